"""Deterministic random helpers for the generator."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")


class Weighted(Generic[T]):
    """A weighted choice with cumulative weights computed once."""

    def __init__(self, options: dict[T, float]) -> None:
        self.values = tuple(options)
        self.cumulative = tuple(itertools.accumulate(options.values()))

    def pick(self, rng: random.Random) -> T:
        point = rng.random() * self.cumulative[-1]
        return self.values[bisect.bisect_right(self.cumulative, point)]


def stable_guid(*parts: object) -> str:
    """A GUID derived from its parts: the same inputs give the same GUID on every run."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"


def guid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def cover(values: Sequence[T], index: int, fallback: Weighted[T], rng: random.Random) -> T:
    """The index-th coverage value for the first members of a population, then random draws."""
    return values[index] if index < len(values) else fallback.pick(rng)


def iso(moment: datetime) -> str:
    """ARM timestamp form, as in GetClusterExample.json: 2020-12-17T07:14:58.865041Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ago(now: datetime, rng: random.Random, low: timedelta, high: timedelta) -> datetime:
    span = (high - low).total_seconds()
    return now - low - timedelta(seconds=rng.random() * span)
