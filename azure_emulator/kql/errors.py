"""Errors raised while compiling a query, shaped as ARG error `details` entries."""

from __future__ import annotations

from typing import Any

# Detail codes. ParserFailure is the documented one (azure.md §9.4); the semantic ones are the
# emulator's choice because the docs do not show ARG's body for them.
PARSER_FAILURE = "ParserFailure"
UNKNOWN_COLUMN = "UnknownColumn"
UNKNOWN_TABLE = "UnknownTable"


class KqlError(Exception):
    """A query the emulator cannot evaluate; `detail()` is the ARG error detail entry."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        line: int,
        column: int,
        token: str,
        expected: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column
        self.token = token
        self.expected = expected

    def detail(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "line": self.line,
            "characterPositionInLine": self.column,
            "token": self.token,
        }
        if self.expected is not None:
            entry["expectedToken"] = self.expected
        return entry


def parser_failure(line: int, column: int, token: str, expected: str) -> KqlError:
    return KqlError(PARSER_FAILURE, PARSER_FAILURE, line=line, column=column, token=token, expected=expected)
