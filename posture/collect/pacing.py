"""Quota-aware pacing of Azure Resource Graph requests.

ARG gives each principal a rolling-window quota and reports it on every response
(`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`). The quota belongs to the
principal, not to a worker, so the pacing state is shared in Redis: every worker of every
machine that scans as one principal draws from one budget and none of them provokes a 429.

The rule, applied atomically to the shared state:
- while the last answer left requests in the window, take one (remaining - 1);
- when none is left, wait until the reported reset time;
- after that time, let one request through ("probe") and learn the new remaining from it.
Answers are applied in request order; requests still in flight are subtracted, because the
server had not counted them yet when it answered, and before the reset time an answer can only
lower the estimate. (A model of the window from our own send times was tried and dropped: under
load a request reaches ARG later than its send time by more than any fixed margin.)

Waiters carry a priority (a scan's batches: the oldest first). When slots are scarce, a waiter
leaves them to the waiters ahead of it, so the oldest batch finishes collecting first and its
worker stores it while the next batch has the whole quota, instead of all batches finishing
together and the quota standing idle while they all store.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# Extra wait after the reported reset, so a request never reaches ARG a moment too early.
RESET_MARGIN_S = 0.06
# A probe that never reported back (its worker died) stops blocking others after this.
PROBE_TIMEOUT_S = 15.0
# Without quota headers (no quota enforced) re-check this often.
UNMETERED_BUDGET = 10_000
UNMETERED_RELEARN_S = 60.0
STATE_TTL_S = 3600
# A waiter left behind by a slot kept for one ahead of it looks again after this.
YIELD_S = 0.03
# A waiter that stopped asking (its thread ended) no longer holds others back after this.
WAITER_GRACE_S = 0.5


@dataclass
class QuotaState:
    remaining: int | None = None  # None: unknown, a probe must learn it
    reset_at: float = 0.0
    inflight: int = 0
    seq: int = 0
    applied: int = 0
    probe_until: float = 0.0
    waiting: dict[str, list[float]] = field(default_factory=dict)  # waiter -> [priority, expires]

    def to_redis(self) -> dict[str, str]:
        return {
            "remaining": "" if self.remaining is None else str(self.remaining),
            "reset_at": repr(self.reset_at),
            "inflight": str(self.inflight),
            "seq": str(self.seq),
            "applied": str(self.applied),
            "probe_until": repr(self.probe_until),
            "waiting": json.dumps(self.waiting, separators=(",", ":")),
        }

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> QuotaState:
        get = {k.decode(): v.decode() for k, v in raw.items()}.get
        remaining = get("remaining", "")
        return cls(
            remaining=int(remaining) if remaining else None,
            reset_at=float(get("reset_at", "0")),
            inflight=int(get("inflight", "0")),
            seq=int(get("seq", "0")),
            applied=int(get("applied", "0")),
            probe_until=float(get("probe_until", "0")),
            waiting=json.loads(get("waiting", "{}")),
        )


@dataclass(frozen=True)
class Observation:
    remaining: int | None
    resets_after: float | None
    throttled: bool = False


def try_acquire(state: QuotaState, now: float, priority: int = 0, waiter: str = "") -> tuple[float, int]:
    """Mutates `state`; returns (seconds to wait, 0) or (0, ticket) when a request may go.

    A lower `priority` goes first; `waiter` names the caller across its attempts."""
    state.waiting = {name: entry for name, entry in state.waiting.items() if entry[1] > now and name != waiter}
    ahead = sum(1 for entry in state.waiting.values() if entry[0] < priority)
    if state.remaining is not None and state.remaining <= 0 and now >= state.reset_at:
        state.remaining = None
    wait = 0.0
    if state.remaining is None:
        if state.probe_until > now:
            wait = min(0.02, state.probe_until - now)
        elif ahead:
            wait = YIELD_S
        else:
            state.probe_until = now + PROBE_TIMEOUT_S
    elif state.remaining <= 0:
        wait = state.reset_at - now
    elif state.remaining <= ahead:
        wait = YIELD_S
    else:
        state.remaining -= 1
    if wait > 0:
        if waiter:
            state.waiting[waiter] = [priority, now + wait + WAITER_GRACE_S]
        return wait, 0
    state.seq += 1
    state.inflight += 1
    return 0.0, state.seq


def apply_observation(state: QuotaState, ticket: int, seen: Observation, now: float) -> None:
    state.inflight = max(0, state.inflight - 1)
    if ticket < state.applied:
        return  # an older answer: the state already reflects a newer one
    state.applied = ticket
    state.probe_until = 0.0
    if seen.throttled:
        state.remaining = 0
        state.reset_at = now + (seen.resets_after if seen.resets_after is not None else 5.0) + RESET_MARGIN_S
    elif seen.remaining is None:
        state.remaining = UNMETERED_BUDGET
        state.reset_at = now + UNMETERED_RELEARN_S
    else:
        estimate = seen.remaining - state.inflight
        if state.remaining is not None and now < state.reset_at:
            # No slot has freed since the last answer, so the budget cannot have grown. An answer
            # can report more than that when its request reached ARG before one whose answer was
            # applied already (and which is no longer in flight): that request is not counted.
            estimate = min(estimate, state.remaining)
        state.remaining = estimate
        state.reset_at = now + (seen.resets_after or 0.0) + RESET_MARGIN_S


def release(state: QuotaState) -> None:
    """A request that never reached ARG (or whose answer carried no news)."""
    state.inflight = max(0, state.inflight - 1)
    state.probe_until = 0.0


class QuotaPacer(Protocol):
    def acquire(self, priority: int = 0) -> tuple[int, float]: ...
    def observe(self, ticket: int, seen: Observation) -> None: ...
    def release(self, ticket: int) -> None: ...


def _wait_for_ticket(attempt: Callable[[str], tuple[float, int]]) -> tuple[int, float]:
    """(ticket, seconds waited): `attempt` (a try_acquire on the pacer's state) until it grants one."""
    waited, waiter = 0.0, uuid.uuid4().hex[:12]
    while True:
        wait, ticket = attempt(waiter)
        if ticket:
            return ticket, waited
        pause = max(wait, 0.001) + random.uniform(0.0, 0.02)  # noqa: S311 - spreading waiters, not security
        time.sleep(pause)
        waited += pause


@dataclass
class LocalPacer:
    """The same rule for one process (the embedded default has no Redis)."""

    state: QuotaState = field(default_factory=QuotaState)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, priority: int = 0) -> tuple[int, float]:
        def attempt(waiter: str) -> tuple[float, int]:
            with self.lock:
                return try_acquire(self.state, time.time(), priority, waiter)

        return _wait_for_ticket(attempt)

    def observe(self, ticket: int, seen: Observation) -> None:
        with self.lock:
            apply_observation(self.state, ticket, seen, time.time())

    def release(self, ticket: int) -> None:
        with self.lock:
            release(self.state)


class RedisPacer:
    """The rule over a Redis hash, changed in WATCH/MULTI transactions, timed by Redis' clock
    so that workers on machines with skewed clocks agree."""

    def __init__(self, client: object, principal: str) -> None:
        self.redis = client
        self.key = f"arc-posture:arg-quota:{principal}"

    def _now(self, pipe: object) -> float:
        seconds, micros = pipe.time()  # type: ignore[attr-defined]
        return seconds + micros / 1e6

    def _update(self, change: object) -> object:
        def run(pipe: object) -> object:
            state = QuotaState.from_redis(pipe.hgetall(self.key))  # type: ignore[attr-defined]
            result = change(state, self._now(pipe))  # type: ignore[operator]
            pipe.multi()  # type: ignore[attr-defined]
            pipe.hset(self.key, mapping=state.to_redis())  # type: ignore[attr-defined]
            pipe.expire(self.key, STATE_TTL_S)  # type: ignore[attr-defined]
            return result

        return self.redis.transaction(run, self.key, value_from_callable=True)  # type: ignore[attr-defined]

    def acquire(self, priority: int = 0) -> tuple[int, float]:
        def attempt(waiter: str) -> tuple[float, int]:
            return self._update(lambda state, now: try_acquire(state, now, priority, waiter))  # type: ignore[return-value]

        return _wait_for_ticket(attempt)

    def observe(self, ticket: int, seen: Observation) -> None:
        self._update(lambda state, now: apply_observation(state, ticket, seen, now))

    def release(self, ticket: int) -> None:
        self._update(lambda state, now: release(state))


_local_pacers: dict[str, LocalPacer] = {}
_local_lock = threading.Lock()


def pacer_for(principal: str) -> QuotaPacer:
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        return RedisPacer(redis.Redis.from_url(settings.REDIS_URL), principal)
    with _local_lock:
        return _local_pacers.setdefault(principal, LocalPacer())


def parse_timespan(value: str | None) -> float | None:
    """ARG's `x-ms-user-quota-resets-after`: a .NET TimeSpan, `hh:mm:ss` or `hh:mm:ss.fffffff`."""
    if not value:
        return None
    try:
        days = 0
        text = value.strip()
        if "." in text.split(":")[0]:  # d.hh:mm:ss
            day_text, text = text.split(".", 1)
            days = int(day_text)
        hours, minutes, seconds = text.split(":")
        return days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def observation_from_headers(headers: object, *, throttled: bool = False) -> Observation:
    get = getattr(headers, "get", lambda _k, _d=None: None)
    raw_remaining = get("x-ms-user-quota-remaining")
    try:
        remaining = int(raw_remaining) if raw_remaining is not None else None
    except ValueError:
        remaining = None
    return Observation(remaining, parse_timespan(get("x-ms-user-quota-resets-after")), throttled)
