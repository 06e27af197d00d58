"""Kusto scalar semantics on Python values (None is null; dict/list are `dynamic`)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

# Kusto types as ARG reports them in `table` result format.
STRING = "string"
BOOL = "boolean"
LONG = "integer"
REAL = "number"
DATETIME = "datetime"
DYNAMIC = "object"

_INT = re.compile(r"\s*[+-]?\d+\s*")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)


def format_datetime(value: datetime) -> str:
    """The .NET round-trip form ARG uses: 2024-05-01T10:00:00.0000000Z."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, datetime):
        return format_datetime(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return None


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        result = int(value)
    elif isinstance(value, str) and _INT.fullmatch(value):
        result = int(value)
    else:
        return None
    # toint is 32-bit; out of range is null.
    return result if -(2**31) <= result < 2**31 else None


def to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    match = _DATETIME.fullmatch(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        result = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(7, "0")[:6]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        result -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return result


def is_empty(value: Any) -> bool:
    return value is None or value == ""


def coalesce(*values: Any) -> Any:
    """First non-null value; for strings also non-empty (Kusto coalesce)."""
    saw_empty = False
    for value in values:
        if value is None:
            continue
        if value == "" and isinstance(value, str):
            saw_empty = True
            continue
        return value
    return "" if saw_empty else None


def equals(left: Any, right: Any) -> bool:
    """`==`: typed, case-sensitive; any comparison with null is false."""
    if left is None or right is None:
        return False
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if type(left) is not type(right):
        return False
    return bool(left == right)


def compare_key(value: Any) -> tuple[int, Any]:
    """Total order for sorting mixed values: null < bool < number < datetime < string < dynamic."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value)
    if isinstance(value, str):
        return (4, value)
    return (5, to_string(value))


def relational(op: str, left: Any, right: Any) -> bool:
    """`<`, `<=`, `>`, `>=` between values of the same family; null or mixed is false."""
    lkey, rkey = compare_key(left), compare_key(right)
    if lkey[0] == 0 or rkey[0] == 0 or lkey[0] != rkey[0] or lkey[0] == 5:
        return False
    a, b = lkey[1], rkey[1]
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def truth(value: Any) -> bool | None:
    """Three-valued logic input: anything but a bool is null."""
    return value if isinstance(value, bool) else None


def type_of_literal(value: Any) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return LONG
    if isinstance(value, float):
        return REAL
    return STRING
