"""Syntax tree of the KQL subset the emulator evaluates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure_emulator.kql.lexer import Token


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    """A column, optionally followed by property keys / array indexes (`properties.a['b'][0]`)."""

    column: str
    keys: tuple[str | int, ...]
    token: Token


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InList:
    op: str  # in, !in, in~, !in~
    left: Expr
    values: tuple[Any, ...]


Expr = Literal | Path | Call | Binary | InList


@dataclass(frozen=True)
class Assignment:
    name: str | None  # None: the column name is derived from the expression
    expr: Expr


@dataclass(frozen=True)
class Where:
    predicate: Expr


@dataclass(frozen=True)
class Project:
    items: tuple[Assignment, ...]


@dataclass(frozen=True)
class Extend:
    items: tuple[Assignment, ...]


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    descending: bool


@dataclass(frozen=True)
class Sort:
    keys: tuple[SortKey, ...]


@dataclass(frozen=True)
class Take:
    count: int


Operator = Where | Project | Extend | Sort | Take


@dataclass(frozen=True)
class QueryAst:
    table: Token
    operators: tuple[Operator, ...]
