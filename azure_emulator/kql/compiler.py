"""Compiles a parsed query into Python closures over row dicts.

A row is a dict of column -> value; a missing key reads as null. Each operator becomes a function
from a list of rows to a list of rows, so a compiled query is cheap to run many times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from azure_emulator.kql import syntax as s
from azure_emulator.kql import values as v
from azure_emulator.kql.errors import UNKNOWN_COLUMN, UNKNOWN_TABLE, KqlError
from azure_emulator.kql.functions import FUNCTIONS
from azure_emulator.kql.parser import parse

Row = dict[str, Any]
Scalar = Callable[[Row], Any]
Stage = Callable[[list[Row]], list[Row]]
Schema = dict[str, str]  # column -> Kusto type, in column order


@dataclass(frozen=True)
class CompiledQuery:
    text: str
    table: str
    columns: tuple[tuple[str, str], ...]
    has_take: bool
    stages: tuple[Stage, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def run(self, rows: Iterable[Row]) -> list[Row]:
        result = list(rows)
        for stage in self.stages:
            result = stage(result)
        return result


def compile_query(text: str, tables: Mapping[str, Schema]) -> CompiledQuery:
    """Parse and compile; raises KqlError. `tables` maps lower-case table names to schemas."""
    ast = parse(text)
    schema = tables.get(ast.table.text.lower())
    if schema is None:
        token = ast.table
        raise KqlError(
            UNKNOWN_TABLE,
            f"The name '{token.text}' does not refer to any known table, tabular variable or function.",
            line=token.line,
            column=token.column,
            token=token.text,
        )
    current: Schema = dict(schema)
    stages: list[Stage] = []
    for operator in ast.operators:
        stage, current = _compile_operator(operator, current)
        stages.append(stage)
    return CompiledQuery(
        text,
        ast.table.text.lower(),
        tuple(current.items()),
        any(isinstance(op, s.Take) for op in ast.operators),
        tuple(stages),
    )


def _compile_operator(op: s.Operator, schema: Schema) -> tuple[Stage, Schema]:
    if isinstance(op, s.Where):
        predicate, _ = _expr(op.predicate, schema)
        return (lambda rows: [r for r in rows if predicate(r) is True]), schema
    if isinstance(op, s.Project):
        return _project(op.items, schema, keep=False)
    if isinstance(op, s.Extend):
        return _project(op.items, schema, keep=True)
    if isinstance(op, s.Sort):
        return _sort(op.keys, schema), schema
    count = op.count
    return (lambda rows: rows[:count]), schema


def _project(items: tuple[s.Assignment, ...], schema: Schema, *, keep: bool) -> tuple[Stage, Schema]:
    out: Schema = dict(schema) if keep else {}
    computed: list[tuple[str, Scalar]] = []
    unnamed = 0
    for item in items:
        fn, kind = _expr(item.expr, schema)
        name = item.name
        if name is None:
            name = _derived_name(item.expr)
            if name is None:
                unnamed += 1
                name = f"Column{unnamed}"
            if not keep:
                name = _unique(name, out)
        out[name] = kind
        computed.append((name, fn))
    if keep:
        names = tuple(out)
        pairs = tuple(computed)

        def extend(rows: list[Row]) -> list[Row]:
            result = []
            for row in rows:
                new = {name: row.get(name) for name in names}
                for name, fn in pairs:
                    new[name] = fn(row)
                result.append(new)
            return result

        return extend, out
    pairs = tuple(computed)
    return (lambda rows: [{name: fn(r) for name, fn in pairs} for r in rows]), out


def _derived_name(expr: s.Expr) -> str | None:
    """An unnamed path `properties.a.b` becomes `properties_a_b`; a bare column keeps its name."""
    if not isinstance(expr, s.Path):
        return None
    return "_".join([expr.column, *(re.sub(r"\W", "_", str(k)) for k in expr.keys)])


def _unique(name: str, existing: Schema) -> str:
    candidate, suffix = name, 0
    while candidate in existing:
        suffix += 1
        candidate = f"{name}{suffix}"
    return candidate


def _sort(keys: tuple[s.SortKey, ...], schema: Schema) -> Stage:
    compiled = [(_expr(key.expr, schema)[0], key.descending) for key in keys]

    def sort(rows: list[Row]) -> list[Row]:
        result = list(rows)
        # Stable sorts from the last key to the first give a multi-key order; with reverse=True
        # nulls go last for desc and first for asc, as in Kusto.
        for fn, descending in reversed(compiled):
            result.sort(key=lambda r, fn=fn: v.compare_key(fn(r)), reverse=descending)
        return result

    return sort


# -- expressions -------------------------------------------------------------------------------
def _expr(expr: s.Expr, schema: Schema) -> tuple[Scalar, str]:
    if isinstance(expr, s.Literal):
        value = expr.value
        return (lambda _r: value), v.type_of_literal(value)
    if isinstance(expr, s.Path):
        return _path(expr, schema)
    if isinstance(expr, s.Call):
        return _call(expr, schema)
    if isinstance(expr, s.InList):
        return _in_list(expr, schema), v.BOOL
    if isinstance(expr, s.Binary):
        return _binary(expr, schema), v.BOOL
    raise AssertionError(f"unexpected node {expr!r}")


def _path(expr: s.Path, schema: Schema) -> tuple[Scalar, str]:
    if expr.column not in schema:
        token = expr.token
        raise KqlError(
            UNKNOWN_COLUMN,
            f"The name '{expr.column}' does not refer to any known column, table, variable or function.",
            line=token.line,
            column=token.column,
            token=expr.column,
        )
    column, keys = expr.column, expr.keys
    if not keys:
        return (lambda r: r.get(column)), schema[column]

    def walk(row: Row) -> Any:
        value = row.get(column)
        for key in keys:
            if isinstance(value, dict) and isinstance(key, str):
                value = value.get(key)
            elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
                value = value[key]
            else:
                return None
        return value

    return walk, v.DYNAMIC


def _call(expr: s.Call, schema: Schema) -> tuple[Scalar, str]:
    function = FUNCTIONS[expr.name]
    compiled = [_expr(arg, schema) for arg in expr.args]
    impl = function.impl
    kinds = {kind for _, kind in compiled}
    result_type = function.result_type or (kinds.pop() if len(kinds) == 1 else v.DYNAMIC)
    if len(compiled) == 1:
        arg = compiled[0][0]
        return (lambda r: impl(arg(r))), result_type
    fns = [fn for fn, _ in compiled]
    return (lambda r: impl(*(fn(r) for fn in fns))), result_type


def _in_list(expr: s.InList, schema: Schema) -> Scalar:
    left, _ = _expr(expr.left, schema)
    negate = expr.op.startswith("!")
    if expr.op.endswith("~"):
        lowered = frozenset(v.to_string(x).lower() for x in expr.values)

        def in_ci(row: Row) -> bool:
            value = left(row)
            if value is None:
                return False
            return (v.to_string(value).lower() in lowered) != negate

        return in_ci
    options = expr.values

    def in_cs(row: Row) -> bool:
        value = left(row)
        if value is None:
            return False
        return any(v.equals(value, option) for option in options) != negate

    return in_cs


def _binary(expr: s.Binary, schema: Schema) -> Scalar:
    left, _ = _expr(expr.left, schema)
    right, _ = _expr(expr.right, schema)
    op = expr.op
    if op in ("and", "or"):
        return _logical(op, left, right)
    if op in ("==", "!="):
        negate = op == "!="
        return lambda r: _compare_eq(left(r), right(r), negate)
    if op in ("=~", "!~"):
        negate = op == "!~"
        return lambda r: _compare_ci(left(r), right(r), negate)
    if op in ("contains", "!contains"):
        negate = op == "!contains"
        return lambda r: (v.to_string(right(r)).lower() in v.to_string(left(r)).lower()) != negate
    if op in ("has", "!has"):
        negate = op == "!has"
        return lambda r: _has(v.to_string(left(r)), v.to_string(right(r))) != negate
    return lambda r: v.relational(op, left(r), right(r))


def _compare_eq(a: Any, b: Any, negate: bool) -> bool:
    if a is None or b is None:
        return False
    return v.equals(a, b) != negate


def _compare_ci(a: Any, b: Any, negate: bool) -> bool:
    if a is None or b is None:
        return False
    return (v.to_string(a).lower() == v.to_string(b).lower()) != negate


def _has(haystack: str, term: str) -> bool:
    """`has`: the term appears delimited by non-alphanumeric characters (case-insensitive)."""
    if not term:
        return False
    pattern = r"(?<![0-9A-Za-z])" + re.escape(term) + r"(?![0-9A-Za-z])"
    return re.search(pattern, haystack, re.IGNORECASE) is not None


def _logical(op: str, left: Scalar, right: Scalar) -> Scalar:
    if op == "and":

        def conj(row: Row) -> bool | None:
            a = v.truth(left(row))
            if a is False:
                return False
            b = v.truth(right(row))
            if b is False:
                return False
            return True if a and b else None

        return conj

    def disj(row: Row) -> bool | None:
        a = v.truth(left(row))
        if a is True:
            return True
        b = v.truth(right(row))
        if b is True:
            return True
        return False if a is False and b is False else None

    return disj
