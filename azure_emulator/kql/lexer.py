"""Tokenizer for the KQL subset; positions follow ANTLR (line 1-based, column 0-based)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from azure_emulator.kql.errors import parser_failure

IDENT = "ident"
STRING = "string"
NUMBER = "number"
SYMBOL = "symbol"
EOF = "eof"

_SYMBOLS = (
    "==",
    "=~",
    "!=",
    "!~",
    "<=",
    ">=",
    "<",
    ">",
    "=",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "|",
    "-",
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any
    line: int
    column: int


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        while True:
            self._skip_space()
            if self.pos >= len(self.text):
                self.tokens.append(Token(EOF, "<EOF>", None, self.line, self._column()))
                return self.tokens
            self.tokens.append(self._next())

    def _column(self) -> int:
        return self.pos - self.line_start

    def _skip_space(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\n":
                self.pos += 1
                self.line += 1
                self.line_start = self.pos
            elif ch.isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _token(self, kind: str, start: int, value: Any) -> Token:
        return Token(kind, self.text[start : self.pos], value, self.line, start - self.line_start)

    def _next(self) -> Token:
        text, start = self.text, self.pos
        ch = text[start]
        if ch in "'\"" or (ch == "@" and text[start + 1 : start + 2] in ("'", '"')):
            return self._string()
        if ch.isdigit():
            match = _NUMBER.match(text, start)
            assert match is not None
            self.pos = match.end()
            raw = match.group(0)
            return self._token(NUMBER, start, float(raw) if match.group(1) or match.group(2) else int(raw))
        if ch == "!" and _WORD.match(text, start + 1):
            return self._word(start, start + 1)  # !contains, !in, !in~, !has
        word = _WORD.match(text, start)
        if word:
            return self._word(start, start)
        for symbol in _SYMBOLS:
            if text.startswith(symbol, start):
                self.pos += len(symbol)
                return self._token(SYMBOL, start, symbol)
        raise parser_failure(self.line, self._column(), ch, "a query token")

    def _word(self, start: int, word_start: int) -> Token:
        match = _WORD.match(self.text, word_start)
        assert match is not None
        self.pos = match.end()
        # Operator names such as mv-apply or project-away are one token right after a pipe.
        after_pipe = bool(self.tokens) and self.tokens[-1].text == "|"
        while after_pipe and self.text[self.pos : self.pos + 1] == "-":
            more = _WORD.match(self.text, self.pos + 1)
            if not more:
                break
            self.pos = more.end()
        if self.text[start : self.pos] in ("in", "!in") and self.text[self.pos : self.pos + 1] == "~":
            self.pos += 1
        return self._token(IDENT, start, self.text[start : self.pos])

    def _string(self) -> Token:
        text, start = self.text, self.pos
        verbatim = text[start] == "@"
        quote = text[start + 1] if verbatim else text[start]
        self.pos = start + (2 if verbatim else 1)
        chars: list[str] = []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                return self._token(STRING, start, "".join(chars))
            if ch == "\n":
                break
            if ch == "\\" and not verbatim and self.pos + 1 < len(text):
                chars.append(_ESCAPES.get(text[self.pos + 1], text[self.pos + 1]))
                self.pos += 2
                continue
            chars.append(ch)
            self.pos += 1
        raise parser_failure(self.line, start - self.line_start, text[start : self.pos], quote)


def tokenize(text: str) -> list[Token]:
    return _Lexer(text).run()
