"""ARG result paging: evaluated-result cache, skip tokens and page slicing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure_emulator.kql import Row

DEFAULT_PAGE = 100
MAX_PAGE = 1000


@dataclass(frozen=True)
class Evaluated:
    columns: tuple[tuple[str, str], ...]
    rows: list[Row]
    has_take: bool

    @property
    def has_id(self) -> bool:
        return any(name == "id" for name, _ in self.columns)


class ResultCache:
    """LRU of evaluated results with a total row budget, so later pages skip re-evaluation.

    Entries belong to a fleet version: the first lookup for a newer version drops them all.
    """

    def __init__(self, max_rows: int = 1_500_000) -> None:
        self.max_rows = max_rows
        self._entries: OrderedDict[tuple[Any, ...], Evaluated] = OrderedDict()
        self._rows = 0
        self._version = 0
        self._lock = threading.Lock()

    def get_or_compute(self, version: int, key: tuple[Any, ...], compute: Callable[[], Evaluated]) -> Evaluated:
        key = (version, *key)
        with self._lock:
            if version > self._version:
                self._entries.clear()
                self._rows, self._version = 0, version
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        result = compute()  # outside the lock: evaluation can take seconds
        with self._lock:
            if key not in self._entries:
                self._entries[key] = result
                self._rows += len(result.rows)
            while self._rows > self.max_rows and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._rows -= len(evicted.rows)
        return result

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._rows = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class InvalidSkipToken(ValueError):
    pass


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def encode_token(query: str, scope: Any, offset: int, top: int) -> str:
    payload = {"q": fingerprint(query), "s": fingerprint(scope), "o": offset, "t": top}
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_token(token: str, query: str, scope: Any) -> tuple[int, int]:
    """(offset, page size) of a token issued for exactly this query and these scopes."""
    try:
        payload = json.loads(base64.b64decode(token.encode(), validate=True))
        offset, top = int(payload["o"]), int(payload["t"])
        same = payload["q"] == fingerprint(query) and payload["s"] == fingerprint(scope)
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidSkipToken("The $skipToken is malformed.") from error
    if not same:
        raise InvalidSkipToken(
            "The $skipToken was issued for another query or other scopes; send the same query and scopes that produced it."
        )
    if offset < 0 or not 1 <= top <= MAX_PAGE:
        raise InvalidSkipToken("The $skipToken is malformed.")
    return offset, top


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    truncated: bool
    skip_token: str | None


def slice_page(result: Evaluated, query: str, scope: Any, options: dict[str, Any]) -> Page:
    """Apply $top/$skip/$skipToken. Raises InvalidSkipToken."""
    top, skip, token = options.get("$top"), options.get("$skip"), options.get("$skipToken")
    if token:
        offset, token_top = decode_token(token, query, scope)
        size = top or token_top  # an explicit $top/$skip overrides the token's (spec)
        if skip is not None and not result.has_take:
            offset = skip
    else:
        size = top or DEFAULT_PAGE
        offset = 0 if result.has_take else (skip or 0)  # $skip is ignored with take/limit
    total = len(result.rows)
    rows = result.rows[offset : offset + size]
    more = offset + size < total
    if not result.has_id:  # ARG pages only when `id` is projected
        return Page(rows, total, more, None)
    return Page(rows, total, False, encode_token(query, scope, offset + size, size) if more else None)
