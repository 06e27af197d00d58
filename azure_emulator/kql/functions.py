"""Scalar functions of the subset: implementation, arity and result type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure_emulator.kql import values as v


@dataclass(frozen=True)
class Function:
    impl: Callable[..., Any]
    min_args: int
    max_args: int
    result_type: str | None  # None: the type of the first argument (coalesce)


def _not(value: Any) -> bool | None:
    value = v.truth(value)
    return None if value is None else not value


FUNCTIONS: dict[str, Function] = {
    "tostring": Function(v.to_string, 1, 1, v.STRING),
    "tolower": Function(lambda x: v.to_string(x).lower(), 1, 1, v.STRING),
    "toupper": Function(lambda x: v.to_string(x).upper(), 1, 1, v.STRING),
    "tobool": Function(v.to_bool, 1, 1, v.BOOL),
    "toint": Function(v.to_int, 1, 1, v.LONG),
    "todatetime": Function(v.to_datetime, 1, 1, v.DATETIME),
    "coalesce": Function(v.coalesce, 2, 64, None),
    "isempty": Function(v.is_empty, 1, 1, v.BOOL),
    "isnotempty": Function(lambda x: not v.is_empty(x), 1, 1, v.BOOL),
    "isnull": Function(lambda x: x is None, 1, 1, v.BOOL),
    "isnotnull": Function(lambda x: x is not None, 1, 1, v.BOOL),
    "not": Function(_not, 1, 1, v.BOOL),
}
