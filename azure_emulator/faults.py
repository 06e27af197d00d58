"""Scriptable faults: queued, matched by endpoint kind (and optionally a path substring), each
applying to its next `count` matching requests before normal service resumes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from azure_emulator.entra import ID_TOKEN_FAULTS
from azure_emulator.identity import TOKEN_FAILURES

KINDS = ("openid", "token", "arg", "arm")
MANGLE_MODES = ("drop", "number", "string_bool", "object", "null")
_BEFORE = ("respond", "drop", "malformed", "token_failure")


@dataclass
class Fault:
    type: str  # respond | slow | drop | malformed | mangle | token_failure | id_token
    kind: str
    count: int = 1
    path: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0
    how: str | None = None  # token failure name or mangle mode ("mixed" cycles through all)
    columns: list[str] | None = None
    query: str | None = None  # ARG only: a substring of the request's KQL, to aim at one query

    def matches(self, kind: str, path: str, types: Iterable[str], query_text: str = "") -> bool:
        return (
            self.kind == kind
            and self.type in types
            and (self.path is None or self.path.lower() in path.lower())
            and (self.query is None or self.query.lower() in query_text.lower())
        )


class Faults:
    def __init__(self, expire_tokens: Callable[[], None]) -> None:
        self._queue: list[Fault] = []
        self._forbidden: set[str] = set()
        self._expire_tokens = expire_tokens
        self._lock = threading.Lock()

    # -- scripting API --------------------------------------------------------------------------
    def add(
        self,
        kind: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        retry_after: float | None = None,
        count: int = 1,
        path: str | None = None,
        query: str | None = None,
    ) -> None:
        """Answer with this status (default body in the endpoint's error shape); no Retry-After
        unless `retry_after` is given."""
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = f"{retry_after:g}"
        self._push(Fault("respond", kind, count, path, status=status, headers=all_headers, body=body, query=query))

    def slow(self, kind: str, seconds: float, *, count: int = 1, path: str | None = None, query: str | None = None) -> None:
        """Sleep before answering normally (beyond the client's timeout, typically)."""
        self._push(Fault("slow", kind, count, path, seconds=seconds, query=query))

    def drop_connection(self, kind: str, *, count: int = 1, path: str | None = None, query: str | None = None) -> None:
        self._push(Fault("drop", kind, count, path, query=query))

    def malformed_json(self, kind: str, *, count: int = 1, path: str | None = None, query: str | None = None) -> None:
        """HTTP 200 whose JSON body is cut off."""
        self._push(Fault("malformed", kind, count, path, query=query))

    def mangle_rows(
        self,
        kind: str = "arg",
        *,
        how: str = "mixed",
        columns: list[str] | None = None,
        count: int = 1,
        path: str | None = None,
        query: str | None = None,
    ) -> None:
        """Damage the rows of the next successful page: drop columns or give them odd types.
        `columns` defaults to every column except `id`. With kind="arm", the top-level fields of
        the next resource body (properties, name, ...) are damaged the same way."""
        if kind not in ("arg", "arm"):
            raise ValueError("only Resource Graph rows and ARM resource bodies can be mangled")
        if how not in (*MANGLE_MODES, "mixed"):
            raise ValueError(f"how must be one of {MANGLE_MODES} or 'mixed'")
        self._push(Fault("mangle", kind, count, path, how=how, columns=columns, query=query))

    def token_failure(self, how: str, *, count: int = 1) -> None:
        """server_error (500), invalid_client (401 AADSTS7000215), missing_expires_in or
        missing_access_token (a 200 without that field)."""
        if how not in TOKEN_FAILURES:
            raise ValueError(f"how must be one of {TOKEN_FAILURES}")
        self._push(Fault("token_failure", "token", count, how=how))

    def id_token(self, how: str, *, count: int = 1) -> None:
        """The next id tokens of the authorization code flow come wrong: wrong_audience,
        wrong_issuer, wrong_nonce, expired, other_tenant or unknown_kid (signed by an unpublished key)."""
        if how not in ID_TOKEN_FAULTS:
            raise ValueError(f"how must be one of {ID_TOKEN_FAULTS}")
        self._push(Fault("id_token", "token", count, how=how))

    def forbid_subscriptions(self, subscriptions: Iterable[str]) -> None:
        """The principal loses read access: 403 when named, left out of tenant/MG scope."""
        with self._lock:
            self._forbidden |= {s.lower() for s in subscriptions}

    def allow_subscriptions(self, subscriptions: Iterable[str] | None = None) -> None:
        with self._lock:
            if subscriptions is None:
                self._forbidden.clear()
            else:
                self._forbidden -= {s.lower() for s in subscriptions}

    def expire_tokens(self) -> None:
        """Every token issued so far expires now."""
        self._expire_tokens()

    def apply_spec(self, spec: dict[str, Any]) -> None:
        """The same operations from JSON (POST /_emu/faults): {"type": ..., **keywords}."""
        spec = dict(spec)
        kind = spec.pop("type", "respond")
        operations: dict[str, Callable[..., None]] = {
            "respond": self.add,
            "slow": self.slow,
            "drop": self.drop_connection,
            "malformed": self.malformed_json,
            "mangle": self.mangle_rows,
            "token_failure": self.token_failure,
            "id_token": self.id_token,
            "forbid_subscriptions": self.forbid_subscriptions,
            "allow_subscriptions": self.allow_subscriptions,
            "expire_tokens": self.expire_tokens,
        }
        if kind not in operations:
            raise ValueError(f"unknown fault type {kind!r}; expected one of {sorted(operations)}")
        operations[kind](**spec)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._queue]

    @property
    def forbidden(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._forbidden)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._forbidden.clear()

    # -- server side ----------------------------------------------------------------------------
    def take(self, kind: str, path: str, stage: str, query_text: str = "") -> Fault | None:
        """Consume one use of the first queued fault for this request and stage
        ("slow", "before" the handler, or "mangle" after a successful page)."""
        types = _BEFORE if stage == "before" else (stage,)
        with self._lock:
            for fault in self._queue:
                if fault.matches(kind, path, types, query_text):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._queue.remove(fault)
                    return fault
        return None

    def _push(self, fault: Fault) -> None:
        if fault.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(fault)


def mangle_rows(rows: list[dict[str, Any]], fault: Fault) -> list[dict[str, Any]]:
    """Rows with the chosen columns removed or replaced by oddly typed values."""
    result = []
    for index, row in enumerate(rows):
        how = fault.how if fault.how != "mixed" else MANGLE_MODES[index % len(MANGLE_MODES)]
        targets = fault.columns if fault.columns is not None else [c for c in row if c != "id"]
        new = dict(row)
        for column in targets:
            if how == "drop":
                new.pop(column, None)
            else:
                new[column] = _ODD_VALUES[how]
        result.append(new)
    return result


_ODD_VALUES: dict[str, Any] = {
    "number": 12345,
    "string_bool": "true",
    "object": {"unexpected": {"nested": [1, "two", None]}},
    "null": None,
}
