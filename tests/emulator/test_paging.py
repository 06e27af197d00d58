"""The evaluated-result cache and skip tokens, without HTTP."""

from __future__ import annotations

import base64
import json

import pytest

from azure_emulator.paging import Evaluated, InvalidSkipToken, ResultCache, decode_token, encode_token


def evaluated(count: int) -> Evaluated:
    return Evaluated((("id", "string"),), [{"id": str(i)} for i in range(count)], has_take=False)


def test_later_pages_are_served_from_the_cache_until_the_fleet_changes() -> None:
    cache, calls = ResultCache(), []

    def compute() -> Evaluated:
        calls.append(1)
        return evaluated(3)

    first = cache.get_or_compute(0, ("q", ("sub",)), compute)
    assert cache.get_or_compute(0, ("q", ("sub",)), compute) is first
    assert len(calls) == 1
    cache.get_or_compute(0, ("q", ("other-sub",)), compute)
    assert len(calls) == 2 and len(cache) == 2
    cache.get_or_compute(1, ("q", ("sub",)), compute)  # a mutation bumped the fleet version
    assert len(calls) == 3 and len(cache) == 1


def test_the_cache_evicts_least_recently_used_results_beyond_its_row_budget() -> None:
    cache = ResultCache(max_rows=10)
    for name in ("a", "b", "c"):
        cache.get_or_compute(0, (name,), lambda: evaluated(4))
    assert len(cache) == 2
    recomputed: list[str] = []

    def compute() -> Evaluated:
        recomputed.append("a")
        return evaluated(4)

    cache.get_or_compute(0, ("c",), compute)  # still cached
    cache.get_or_compute(0, ("a",), compute)  # evicted first
    assert recomputed == ["a"]


def test_skip_tokens_are_bound_to_the_query_and_the_scopes() -> None:
    token = encode_token("resources | project id", ("subscriptions", ("s1",)), 200, 100)
    assert decode_token(token, "resources | project id", ("subscriptions", ("s1",))) == (200, 100)
    for query, scope in (("resources | project id, name", ("subscriptions", ("s1",))), ("resources | project id", ("tenant",))):
        with pytest.raises(InvalidSkipToken, match="another query or other scopes"):
            decode_token(token, query, scope)
    forged = base64.b64encode(json.dumps({"q": "x", "s": "y", "o": -1}).encode()).decode()
    for bad in ("not base64!", forged):
        with pytest.raises(InvalidSkipToken, match="malformed"):
            decode_token(bad, "resources | project id", ("tenant",))
