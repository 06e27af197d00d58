"""Recursive-descent parser for the KQL subset.

Grammar: `table ('|' operator)*` with operators where, project, extend, order by / sort by, take /
limit. Anything else, including valid Kusto the emulator does not evaluate (summarize, join,
mv-apply, ...), is a ParserFailure like the one ARG documents.
"""

from __future__ import annotations

from typing import Any

from azure_emulator.kql import syntax as s
from azure_emulator.kql.errors import parser_failure
from azure_emulator.kql.functions import FUNCTIONS
from azure_emulator.kql.lexer import EOF, IDENT, NUMBER, STRING, SYMBOL, Token, tokenize

OPERATORS = "where, project, extend, order by, sort by, take, limit"
_COMPARISONS = {"==", "!=", "=~", "!~", "<", "<=", ">", ">="}
_WORD_COMPARISONS = {"contains", "!contains", "has", "!has"}
_IN_OPERATORS = {"in", "!in", "in~", "!in~"}


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    # -- token helpers -------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != EOF:
            self.index += 1
        return token

    def _is(self, text: str) -> bool:
        token = self.current
        return token.kind in (SYMBOL, IDENT) and token.text == text

    def _fail(self, expected: str) -> Exception:
        token = self.current
        return parser_failure(token.line, token.column, token.text, expected)

    def _expect(self, text: str) -> Token:
        if not self._is(text):
            raise self._fail(text)
        return self._advance()

    # -- query and operators -------------------------------------------------------------------
    def parse(self) -> s.QueryAst:
        if self.current.kind != IDENT:
            raise self._fail("a table name")
        table = self._advance()
        operators: list[s.Operator] = []
        while self._is("|"):
            self._advance()
            operators.append(self._operator())
        if self.current.kind != EOF:
            raise self._fail("|")
        return s.QueryAst(table, tuple(operators))

    def _operator(self) -> s.Operator:
        token = self.current
        name = token.text if token.kind == IDENT else ""
        if name == "where":
            self._advance()
            return s.Where(self._expr())
        if name in ("project", "extend"):
            self._advance()
            items = self._assignments()
            return s.Project(items) if name == "project" else s.Extend(items)
        if name in ("order", "sort"):
            self._advance()
            self._expect("by")
            return s.Sort(self._sort_keys())
        if name in ("take", "limit"):
            self._advance()
            if self.current.kind != NUMBER or not isinstance(self.current.value, int):
                raise self._fail("an integer row count")
            return s.Take(self._advance().value)
        raise self._fail(OPERATORS)

    def _assignments(self) -> tuple[s.Assignment, ...]:
        items = [self._assignment()]
        while self._is(","):
            self._advance()
            items.append(self._assignment())
        return tuple(items)

    def _assignment(self) -> s.Assignment:
        name: str | None = None
        following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
        if self.current.kind == IDENT and following is not None and following.text == "=":
            name = self._advance().text
            self._advance()
        elif self._is("[") and self._bracket_assignment_ahead():
            self._advance()
            name = self._advance().value
            self._advance()
            self._advance()
        return s.Assignment(name, self._expr())

    def _bracket_assignment_ahead(self) -> bool:
        ahead = self.tokens[self.index : self.index + 4]
        return len(ahead) == 4 and ahead[1].kind == STRING and ahead[2].text == "]" and ahead[3].text == "="

    def _sort_keys(self) -> tuple[s.SortKey, ...]:
        keys = [self._sort_key()]
        while self._is(","):
            self._advance()
            keys.append(self._sort_key())
        return tuple(keys)

    def _sort_key(self) -> s.SortKey:
        expr = self._expr()
        descending = True  # Kusto's default order is descending
        if self._is("asc") or self._is("desc"):
            descending = self._advance().text == "desc"
        return s.SortKey(expr, descending)

    # -- expressions ---------------------------------------------------------------------------
    def _expr(self) -> s.Expr:
        left = self._and()
        while self._is("or"):
            self._advance()
            left = s.Binary("or", left, self._and())
        return left

    def _and(self) -> s.Expr:
        left = self._comparison()
        while self._is("and"):
            self._advance()
            left = s.Binary("and", left, self._comparison())
        return left

    def _comparison(self) -> s.Expr:
        left = self._unary()
        token = self.current
        if token.kind in (SYMBOL, IDENT) and (token.text in _COMPARISONS or token.text in _WORD_COMPARISONS):
            self._advance()
            return s.Binary(token.text, left, self._unary())
        if token.kind == IDENT and token.text in _IN_OPERATORS:
            self._advance()
            return s.InList(token.text, left, self._literal_list())
        return left

    def _literal_list(self) -> tuple[Any, ...]:
        self._expect("(")
        items = [self._literal_value()]
        while self._is(","):
            self._advance()
            items.append(self._literal_value())
        self._expect(")")
        return tuple(items)

    def _literal_value(self) -> Any:
        expr = self._unary()
        if not isinstance(expr, s.Literal):
            raise self._fail("a literal")
        return expr.value

    def _unary(self) -> s.Expr:
        if self._is("-"):
            self._advance()
            if self.current.kind != NUMBER:
                raise self._fail("a number")
            return s.Literal(-self._advance().value)
        return self._primary()

    def _primary(self) -> s.Expr:
        token = self.current
        if token.kind in (STRING, NUMBER):
            return s.Literal(self._advance().value)
        if token.kind == IDENT and token.text in ("true", "false"):
            return s.Literal(self._advance().text == "true")
        if self._is("("):
            self._advance()
            expr = self._expr()
            self._expect(")")
            return expr
        if self._is("["):
            self._advance()
            if self.current.kind != STRING:
                raise self._fail("a quoted column name")
            name = self._advance().value
            self._expect("]")
            return self._path(name, token)
        if token.kind == IDENT and not token.text.startswith("!"):
            self._advance()
            if self._is("("):
                return self._call(token)
            return self._path(token.text, token)
        raise self._fail("an expression")

    def _call(self, name: Token) -> s.Expr:
        function = FUNCTIONS.get(name.text)
        if function is None:
            raise parser_failure(name.line, name.column, name.text, "a supported function")
        self._advance()
        args = [self._expr()]
        while self._is(",") and len(args) < function.max_args:
            self._advance()
            args.append(self._expr())
        if len(args) < function.min_args:
            raise self._fail(",")
        self._expect(")")
        return s.Call(name.text, tuple(args))

    def _path(self, column: str, token: Token) -> s.Path:
        keys: list[str | int] = []
        while True:
            if self._is("."):
                self._advance()
                if self.current.kind != IDENT:
                    raise self._fail("a property name")
                keys.append(self._advance().text)
            elif self._is("["):
                self._advance()
                key = self.current
                if key.kind not in (STRING, NUMBER) or isinstance(key.value, float):
                    raise self._fail("a property name or index")
                keys.append(self._advance().value)
                self._expect("]")
            else:
                return s.Path(column, tuple(keys), token)


def parse(text: str) -> s.QueryAst:
    return Parser(text).parse()
