"""Quota-aware pacing of Azure Resource Graph requests.

ARG gives each principal a rolling-window quota and reports it on every response
(`x-ms-user-quota-remaining`, `x-ms-user-quota-resets-after`). The quota belongs to the
principal, not to a worker, so the pacing state is shared in Redis: every worker of every
machine that scans as one principal draws from one budget and none of them provokes a 429.

The rule, applied atomically to the shared state:
- while the last answer left requests in the window, take one (remaining - 1);
- when none is left, wait until the reported reset time;
- after that time, let one request through ("probe") and learn the new remaining from it.
Every answer bounds the budget from below: its remaining, less every request the server may not
have counted yet (those still in flight, and those answered since this one was granted, unless
their answers prove they were measured first). The newest answer sets the estimate; an older one
arriving later can only raise it. So a slot that frees between two answers is used at once, and
the estimate never exceeds the truth. Below zero, requests in flight may take the reset's slot,
so the probe waits for their answers. (A model of the window from our own send times was tried
and dropped: under load a request reaches ARG later than its send time by more than any fixed
margin.)

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
# How often a waiter looks for news while answers that may free slots are on their way.
NEWS_POLL_S = 0.1
# A waiter that stopped asking (its thread ended) no longer holds others back after this.
WAITER_GRACE_S = 0.15
# A lapsed waiter is forgotten this long after it lapsed (it might just be registering again).
WAITER_FORGET_S = 10.0
# Grants kept on record for their answers; more are in flight only if workers died mid-request.
MAX_TRACKED_TICKETS = 200


@dataclass
class QuotaState:
    remaining: int | None = None  # None: unknown, a probe must learn it
    reset_at: float = 0.0
    inflight: int = 0
    seq: int = 0
    applied: int = 0
    probe_until: float = 0.0
    waiting: dict[str, list[float]] = field(default_factory=dict)  # waiter -> [priority, expires]
    answered: int = 0  # answers and releases so far
    # The latest answers: [their number in `answered`, the latest time their window's oldest slot
    # frees (None: unknown)], to tell which were measured before a later answer (_uncounted).
    answers: list[tuple[int, float | None]] = field(default_factory=list)
    granted: dict[str, list[float]] = field(default_factory=dict)  # ticket in flight -> [`answered`, time] at its grant
    estimated_at: float = 0.0  # when an answer last set `remaining`
    reset_floor: float = 0.0  # the slot freeing at reset_at frees no earlier than this

    def to_redis(self) -> dict[str, str]:
        """The shared budget; the waiters are kept in a hash of their own (see RedisPacer)."""
        return {
            "remaining": "" if self.remaining is None else str(self.remaining),
            "reset_at": repr(self.reset_at),
            "inflight": str(self.inflight),
            "seq": str(self.seq),
            "applied": str(self.applied),
            "probe_until": repr(self.probe_until),
            "answered": str(self.answered),
            "answers": json.dumps(self.answers, separators=(",", ":")),
            "granted": json.dumps(self.granted, separators=(",", ":")),
            "estimated_at": repr(self.estimated_at),
            "reset_floor": repr(self.reset_floor),
        }

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes], waiting: dict[bytes, bytes] | None = None) -> QuotaState:
        get = {k.decode(): v.decode() for k, v in raw.items()}.get
        remaining = get("remaining", "")
        return cls(
            remaining=int(remaining) if remaining else None,
            reset_at=float(get("reset_at", "0")),
            inflight=int(get("inflight", "0")),
            seq=int(get("seq", "0")),
            applied=int(get("applied", "0")),
            probe_until=float(get("probe_until", "0")),
            waiting={k.decode(): json.loads(v) for k, v in (waiting or {}).items()},
            answered=int(get("answered", "0")),
            answers=[(int(number), frees) for number, frees in json.loads(get("answers", "[]"))],
            granted=json.loads(get("granted", "{}")),
            estimated_at=float(get("estimated_at", "0")),
            reset_floor=float(get("reset_floor", "0")),
        )


@dataclass(frozen=True)
class Observation:
    remaining: int | None
    resets_after: float | None
    throttled: bool = False


def try_acquire(state: QuotaState, now: float, priority: int = 0, waiter: str = "") -> tuple[float, int]:
    """Mutates `state`; returns (seconds to wait, 0) or (0, ticket) when a request may go.

    A lower `priority` goes first; `waiter` names the caller across its attempts."""
    state.waiting = {name: entry for name, entry in state.waiting.items() if entry[1] > now - WAITER_FORGET_S and name != waiter}
    ahead = sum(1 for entry in state.waiting.values() if entry[1] > now and entry[0] < priority)
    if state.remaining is not None and state.remaining <= 0 and now >= state.reset_at:
        # The reset freed one slot the estimate does not count. Below zero, requests in flight
        # may take it: probe only once their answers are in.
        if state.remaining == 0 or not state.inflight:
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
        wait = state.reset_at - now if now < state.reset_at else NEWS_POLL_S
        if state.inflight:  # an answer on its way may free a slot before the reset: look again soon
            wait = min(wait, NEWS_POLL_S)
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
    state.granted[str(state.seq)] = [state.answered, now]
    if len(state.granted) > MAX_TRACKED_TICKETS:  # tickets of dead workers, never answered
        for stale in sorted(state.granted, key=int)[: len(state.granted) - MAX_TRACKED_TICKETS]:
            del state.granted[stale]
    return 0.0, state.seq


def apply_observation(state: QuotaState, ticket: int, seen: Observation, now: float) -> None:
    grant = state.granted.pop(str(ticket), None)
    state.inflight = max(0, state.inflight - 1)
    # Every answer bounds the budget from below: its remaining, less each request the server may
    # not have counted yet (still in flight, or answered since this one was granted: it may have
    # reached ARG after this one). Without the grant on record (long ago), the bound is zero.
    bound = None
    if seen.remaining is not None and not seen.throttled:
        bound = seen.remaining - state.inflight - _uncounted(state, grant, seen) if grant is not None else 0
    _count_answer(state, now + seen.resets_after if bound is not None and seen.resets_after else None)
    if ticket < state.applied:
        # An older answer: the state reflects a newer one, but this one may free what the newer
        # one had to count as in flight, or know of a slot that frees sooner.
        if bound is not None and state.remaining is not None:
            raises = bound > state.remaining
            if raises:
                state.remaining, state.estimated_at = bound, now
            _learn_reset(state, seen, grant, now, sets_estimate=raises)
        return
    state.applied = ticket
    state.probe_until = 0.0
    state.estimated_at = now
    if seen.throttled:
        state.remaining = 0
        state.reset_at = now + (seen.resets_after if seen.resets_after is not None else 5.0) + RESET_MARGIN_S
        state.reset_floor = 0.0
    elif bound is None:
        state.remaining = UNMETERED_BUDGET
        state.reset_at = now + UNMETERED_RELEARN_S
        state.reset_floor = 0.0
    else:
        state.remaining = bound
        _learn_reset(state, seen, grant, now, sets_estimate=True)


def _uncounted(state: QuotaState, grant: list[float], seen: Observation) -> int:
    """Answers since this request's grant whose requests ARG may have counted after measuring
    this one's quota: all of them, except those provably measured before it. A sliding window's
    oldest slot never frees earlier for a later measurement, so an answer whose oldest slot
    freed (at the latest) before this one's did (at the earliest: grant + resets-after) was
    measured first, and its request is in this answer's count."""
    answered_at, granted_at = int(grant[0]), grant[1]
    earliest = granted_at + seen.resets_after if seen.resets_after else None
    first_listed = state.answers[0][0] if state.answers else state.answered
    unlisted = max(0, first_listed - answered_at)  # too long ago to be listed: counted
    listed = [frees for number, frees in state.answers if number >= answered_at]
    return unlisted + sum(1 for frees in listed if earliest is None or frees is None or frees >= earliest)


def _count_answer(state: QuotaState, frees: float | None) -> None:
    state.answers.append((state.answered, frees))
    del state.answers[:-MAX_TRACKED_TICKETS]
    state.answered += 1


def _learn_reset(state: QuotaState, seen: Observation, grant: list[float] | None, now: float, *, sets_estimate: bool) -> None:
    """Keep the earliest known time at which a slot frees that the estimate does not count yet.

    An answer's `resets-after` was measured by ARG between the request's grant and its answer:
    the window's oldest slot frees between grant + resets-after (floor) and answer +
    resets-after. That slot is not counted as free by an estimate made before it freed, so a
    reset whose floor is later than the estimate's time stays usable: a slow answer (measured
    long before it arrived) no longer postpones a reset that a quicker one already told of."""
    after = seen.resets_after or 0.0
    candidate = (now + after + RESET_MARGIN_S, (grant[1] if grant is not None else now) + after)
    known = (state.reset_at, state.reset_floor)
    if sets_estimate:  # the answer's own reset always counts for its own estimate
        options = [candidate] + ([known] if known[1] > state.estimated_at else [])
    else:
        options = [known] + ([candidate] if candidate[1] > state.estimated_at else [])
    state.reset_at, state.reset_floor = min(options)


def release(state: QuotaState, ticket: int) -> None:
    """A request that never reached ARG (or whose answer carried no news)."""
    state.granted.pop(str(ticket), None)
    state.inflight = max(0, state.inflight - 1)
    _count_answer(state, None)
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
            release(self.state, ticket)


class RedisPacer:
    """The rule over Redis, timed by Redis' clock so that workers on machines with skewed clocks
    agree. The budget is one hash, changed in WATCH/MULTI transactions; the waiters are another,
    so that waiting, which changes only the waiter's own entry, never conflicts with the
    transactions that grant and that apply answers (under many waiters, an answer could
    otherwise be retried for seconds while the slots it frees stay unused)."""

    def __init__(self, client: object, principal: str) -> None:
        self.redis = client
        self.key = f"arc-posture:arg-quota:{principal}"
        self.waiting_key = f"{self.key}:waiting"

    def _now(self, pipe: object) -> float:
        seconds, micros = pipe.time()  # type: ignore[attr-defined]
        return seconds + micros / 1e6

    def _update(self, change: object) -> object:
        def run(pipe: object) -> object:
            state = QuotaState.from_redis(pipe.hgetall(self.key), pipe.hgetall(self.waiting_key))  # type: ignore[attr-defined]
            budget, waiting = state.to_redis(), dict(state.waiting)
            result = change(state, self._now(pipe))  # type: ignore[operator]
            changed = state.to_redis()
            if changed == budget:
                pipe.unwatch()  # type: ignore[attr-defined]  # read only: a concurrent change cannot invalidate it
            pipe.multi()  # type: ignore[attr-defined]
            if changed != budget:
                pipe.hset(self.key, mapping=changed)  # type: ignore[attr-defined]
                pipe.expire(self.key, STATE_TTL_S)  # type: ignore[attr-defined]
            gone = [name for name in waiting if name not in state.waiting]
            if gone:
                pipe.hdel(self.waiting_key, *gone)  # type: ignore[attr-defined]
            news = {name: json.dumps(entry) for name, entry in state.waiting.items() if waiting.get(name) != entry}
            if news:
                pipe.hset(self.waiting_key, mapping=news)  # type: ignore[attr-defined]
                pipe.expire(self.waiting_key, STATE_TTL_S)  # type: ignore[attr-defined]
            return result

        return self.redis.transaction(run, self.key, value_from_callable=True)  # type: ignore[attr-defined]

    def acquire(self, priority: int = 0) -> tuple[int, float]:
        def attempt(waiter: str) -> tuple[float, int]:
            return self._update(lambda state, now: try_acquire(state, now, priority, waiter))  # type: ignore[return-value]

        return _wait_for_ticket(attempt)

    def observe(self, ticket: int, seen: Observation) -> None:
        self._update(lambda state, now: apply_observation(state, ticket, seen, now))

    def release(self, ticket: int) -> None:
        self._update(lambda state, now: release(state, ticket))


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
