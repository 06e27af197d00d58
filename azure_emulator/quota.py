"""Throttling: ARG's per-principal rolling window and ARM's per-subscription read bucket."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

QUOTA_OFF_REMAINING = 1000  # reported when the quota is switched off: never a reason to pause


def format_timespan(seconds: float) -> str:
    """.NET TimeSpan "c" format: hh:mm:ss, or hh:mm:ss.fffffff when there are fractions."""
    ticks = max(0, round(seconds * 10_000_000))
    whole, fraction = divmod(ticks, 10_000_000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{text}.{fraction:07d}" if fraction else text


@dataclass(frozen=True)
class QuotaDecision:
    allowed: bool
    remaining: int
    resets_after: float

    def headers(self) -> dict[str, str]:
        return {
            "x-ms-user-quota-remaining": str(self.remaining),
            "x-ms-user-quota-resets-after": format_timespan(self.resets_after),
        }


class SlidingWindowQuota:
    """At most `limit` requests per principal in any `window` seconds (a sliding log).

    A rejected request is not recorded, so it does not consume quota.
    """

    def __init__(self, limit: int | None, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def configure(self, limit: int | None, window: float) -> None:
        with self._lock:
            self.limit, self.window = limit, window
            self._log.clear()

    def reset(self) -> None:
        with self._lock:
            self._log.clear()

    def take(self, principal: str) -> QuotaDecision:
        return self._decide(principal, consume=True)

    def peek(self, principal: str) -> QuotaDecision:
        return self._decide(principal, consume=False)

    def _decide(self, principal: str, *, consume: bool) -> QuotaDecision:
        with self._lock:
            if self.limit is None:
                return QuotaDecision(True, QUOTA_OFF_REMAINING, 0.0)
            now = self._clock()
            log = self._log.setdefault(principal, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            allowed = len(log) < self.limit
            if allowed and consume:
                log.append(now)
            resets_after = (log[0] + self.window - now) if log else 0.0
            return QuotaDecision(allowed, max(0, self.limit - len(log)), resets_after)


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    remaining: int
    retry_after: int


class ReadBuckets:
    """ARM's subscription read limit as a token bucket (burst + refill per second)."""

    def __init__(self, burst: int | None, refill: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.refill = refill
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._lock = threading.Lock()

    def configure(self, burst: int | None, refill: float) -> None:
        with self._lock:
            self.burst, self.refill = burst, refill
            self._buckets.clear()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def take(self, key: str, *, consume: bool = True) -> BucketDecision:
        with self._lock:
            if self.burst is None:
                return BucketDecision(True, QUOTA_OFF_REMAINING * 10, 0)
            now = self._clock()
            tokens, updated = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - updated) * self.refill)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.refill) if self.refill > 0 else 60
                return BucketDecision(False, 0, max(1, wait))
            if consume:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            return BucketDecision(True, int(tokens), 0)
