"""What evaluations write is read through a cache keyed by the fleet's version."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import caches

T = TypeVar("T")


def cached(key: str, version: str, compute: Callable[[], T], timeout: int = 24 * 3600) -> T:
    """`compute()` once per evaluation: results change only when an evaluation runs, so its
    output (counts, drift, filter options) is cached under the fleet's version."""
    if not version:
        return compute()
    full = "read:" + hashlib.sha256(f"{version}|{key}".encode()).hexdigest()
    value = caches["pages"].get(full)
    if value is None:
        value = compute()
        caches["pages"].set(full, value, timeout)
    return value
