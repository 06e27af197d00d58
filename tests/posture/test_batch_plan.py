"""How a scan cuts its subscriptions into batches."""

from __future__ import annotations

import pytest

from posture.scans.start import TAIL_BATCHES, halving_parts, plan_batches
from posture.scans.sweep import split

SUBSCRIPTIONS = [f"{n:08d}-0000-0000-0000-000000000000" for n in range(1000)]


@pytest.mark.parametrize("count", [0, 1, 7, 299, 300, 301, 1000])
def test_every_subscription_is_in_exactly_one_batch_in_order(count: int) -> None:
    subs = SUBSCRIPTIONS[:count]
    batches = plan_batches(subs, 300)
    assert [s for batch in batches for s in batch] == subs
    assert all(0 < len(batch) <= 300 for batch in batches)


def test_a_scope_within_one_batch_is_not_split() -> None:
    assert plan_batches(SUBSCRIPTIONS[:300], 300) == [SUBSCRIPTIONS[:300]]


def test_the_last_batches_halve_so_little_work_follows_the_last_answer() -> None:
    sizes = [len(batch) for batch in plan_batches(SUBSCRIPTIONS, 300)]
    assert sizes == [234, 233, 233, 160, 80, 40, 20]
    assert len(sizes[-TAIL_BATCHES:]) == TAIL_BATCHES


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 15, 16, 299])
def test_a_short_tail_keeps_every_subscription_in_non_empty_shrinking_parts(count: int) -> None:
    parts = halving_parts(SUBSCRIPTIONS[:count], TAIL_BATCHES)
    assert [s for part in parts for s in part] == SUBSCRIPTIONS[:count]
    assert 0 < len(parts) <= TAIL_BATCHES and all(part for part in parts)
    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)


def test_the_batch_limit_of_resource_graph_holds_for_any_size() -> None:
    many = [f"{n:08d}-1111-0000-0000-000000000000" for n in range(2500)]
    batches = plan_batches(many, 1000)
    assert max(len(b) for b in batches) <= 1000 and sum(len(b) for b in batches) == 2500


def test_small_slices_get_no_stream_of_their_own() -> None:
    assert [len(part) for part in split(SUBSCRIPTIONS[:234], 2)] == [117, 117]
    assert [len(part) for part in split(SUBSCRIPTIONS[:75], 2)] == [38, 37]
    assert [len(part) for part in split(SUBSCRIPTIONS[:40], 2)] == [40]
    assert split([], 2) == [[]]
