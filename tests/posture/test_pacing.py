"""The shared quota pacer keeps every worker of one principal inside ARG's rolling window."""

from __future__ import annotations

import collections
import random
import threading
import time

import pytest

from posture.collect.pacing import (
    RESET_MARGIN_S,
    LocalPacer,
    Observation,
    QuotaState,
    RedisPacer,
    apply_observation,
    observation_from_headers,
    parse_timespan,
    try_acquire,
)


class SlidingWindowServer:
    """ARG's quota as the emulator implements it: `limit` requests per rolling `window`."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.accepted: collections.deque[float] = collections.deque()
        self.rejected = 0
        self.lock = threading.Lock()

    def handle(self) -> Observation:
        with self.lock:
            now = time.monotonic()
            while self.accepted and self.accepted[0] <= now - self.window:
                self.accepted.popleft()
            if len(self.accepted) >= self.limit:
                self.rejected += 1
                return Observation(0, self.accepted[0] + self.window - now, throttled=True)
            self.accepted.append(now)
            return Observation(self.limit - len(self.accepted), self.accepted[0] + self.window - now)


def drive(pacers: list, server: SlidingWindowServer, requests_per_client: int) -> float:
    started = time.monotonic()

    def client(pacer) -> None:
        for _ in range(requests_per_client):
            ticket, _waited = pacer.acquire()
            time.sleep(0.002)  # network
            pacer.observe(ticket, server.handle())

    threads = [threading.Thread(target=client, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def test_three_threads_sharing_a_local_pacer_never_exceed_the_window() -> None:
    server = SlidingWindowServer(limit=5, window=0.5)
    pacer = LocalPacer()
    elapsed = drive([pacer, pacer, pacer], server, requests_per_client=10)
    assert server.rejected == 0
    # 30 requests at 5 per 0.5 s need at least 2.5 s; pacing should not waste much more.
    assert 2.4 <= elapsed <= 2.5 * 1.5


@pytest.mark.services
def test_two_redis_pacers_for_one_principal_share_the_quota(redis_url) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    key = f"test-{time.time_ns()}"
    server = SlidingWindowServer(limit=4, window=0.4)
    pacers = [RedisPacer(redis.Redis.from_url(redis_url), key), RedisPacer(redis.Redis.from_url(redis_url), key)]
    elapsed = drive(pacers, server, requests_per_client=10)
    client.delete(f"arc-posture:arg-quota:{key}")
    assert server.rejected == 0
    assert elapsed >= 1.6  # 20 requests at 4 per 0.4 s


def test_after_a_429_it_waits_for_the_reported_reset() -> None:
    state = QuotaState()
    _, ticket = try_acquire(state, now=100.0)
    apply_observation(state, ticket, Observation(0, 3.0, throttled=True), now=100.0)
    wait, ticket = try_acquire(state, now=101.0)
    assert ticket == 0 and 2.0 < wait <= 2.1
    wait, ticket = try_acquire(state, now=103.1)
    assert wait == 0 and ticket > 0  # the probe after the reset


def test_only_one_probe_goes_out_while_the_quota_is_unknown() -> None:
    state = QuotaState()
    _, first = try_acquire(state, now=10.0)
    wait, second = try_acquire(state, now=10.01)
    assert first and not second and wait > 0
    apply_observation(state, first, Observation(14, 5.0), now=10.02)
    assert [try_acquire(state, now=10.03)[1] > 0 for _ in range(14)] == [True] * 14
    assert try_acquire(state, now=10.04)[1] == 0


def test_in_flight_requests_are_subtracted_and_an_older_answer_can_only_raise_the_estimate() -> None:
    state = QuotaState(remaining=10, reset_at=50.0)
    tickets = [try_acquire(state, now=1.0)[1] for _ in range(3)]
    apply_observation(state, tickets[2], Observation(7, 4.0), now=1.1)  # 2 others still in flight
    assert state.remaining == 5
    # The first request reached ARG first (9 left after it); only the second may be uncounted by
    # the newer answer, and the third was answered since: 9 - 1 - 1.
    apply_observation(state, tickets[0], Observation(9, 4.0), now=1.2)
    assert state.remaining == 7 and state.inflight == 1
    apply_observation(state, tickets[1], Observation(1, 4.0), now=1.3)  # older and lower: no news
    assert state.remaining == 7 and state.inflight == 0


def test_requests_overtaking_each_other_on_the_way_never_exceed_the_window() -> None:
    server = SlidingWindowServer(limit=5, window=0.3)
    pacer = LocalPacer()
    rng = random.Random(7)

    def client() -> None:
        for _ in range(12):
            ticket, _waited = pacer.acquire()
            time.sleep(rng.uniform(0, 0.02))  # to ARG: later grants may arrive first
            seen = server.handle()
            time.sleep(rng.uniform(0, 0.15))  # back: a large page takes longer, up to half the window
            pacer.observe(ticket, seen)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.rejected == 0


def test_an_answer_provably_measured_before_another_is_not_subtracted_from_it() -> None:
    state = QuotaState(remaining=2, reset_at=9.0)
    earlier, later = try_acquire(state, now=0.0)[1], try_acquire(state, now=0.05)[1]
    # The first answer's oldest slot frees by 0.15 at the latest; the second one's (measured
    # later: 1 slot left) not before 0.05 + 2.9. So the first request is in the second's count.
    apply_observation(state, earlier, Observation(1, 0.05), now=0.1)
    apply_observation(state, later, Observation(1, 2.9), now=0.3)
    assert state.remaining == 1
    # Had the first answer come back late, it could have been measured after: not trusted.
    state = QuotaState(remaining=2, reset_at=9.0)
    earlier, later = try_acquire(state, now=0.0)[1], try_acquire(state, now=0.05)[1]
    apply_observation(state, earlier, Observation(1, 2.9), now=0.1)
    apply_observation(state, later, Observation(1, 2.9), now=0.3)
    assert state.remaining == 0


def test_a_slow_answer_does_not_postpone_a_reset_that_a_quicker_one_told_of() -> None:
    state = QuotaState()
    _, probe = try_acquire(state, now=0.0)
    apply_observation(state, probe, Observation(2, 5.0), now=0.05)  # the oldest slot frees at ~5.0
    first, second = try_acquire(state, now=0.1)[1], try_acquire(state, now=0.1)[1]
    # Measured at 0.1 but answered at 2.0: the same oldest slot, announced 1.9 s late.
    apply_observation(state, second, Observation(0, 4.9), now=2.0)
    assert state.remaining <= 0 and state.reset_at == pytest.approx(5.05 + RESET_MARGIN_S)
    apply_observation(state, first, Observation(1, 4.9), now=2.1)
    assert try_acquire(state, now=5.0)[1] == 0
    assert try_acquire(state, now=5.05 + RESET_MARGIN_S)[1]  # the probe, at the first reset


def test_a_reset_the_estimate_may_already_count_is_not_reused() -> None:
    state = QuotaState()
    _, probe = try_acquire(state, now=0.0)
    # Measured when granted at the latest (0.0): the oldest slot may free as early as 1.0.
    apply_observation(state, probe, Observation(1, 1.0), now=0.9)
    _, late = try_acquire(state, now=0.95)
    # Answered at 1.5, so possibly measured after that slot freed and counting it as free already.
    apply_observation(state, late, Observation(0, 2.0), now=1.5)
    assert state.reset_at == pytest.approx(1.5 + 2.0 + RESET_MARGIN_S)


def test_past_the_reset_a_budget_below_zero_waits_for_the_answers_out_before_probing() -> None:
    state = QuotaState()
    _, probe = try_acquire(state, now=0.0)
    apply_observation(state, probe, Observation(2, 1.0), now=0.05)
    first, second = try_acquire(state, now=0.1)[1], try_acquire(state, now=0.1)[1]
    apply_observation(state, second, Observation(0, 0.5), now=0.2)  # 0 left, the first maybe uncounted
    assert state.remaining == -1
    # The reset frees one slot, which the request still out may take: no probe yet.
    wait, ticket = try_acquire(state, now=0.8)
    assert ticket == 0 and wait > 0
    apply_observation(state, first, Observation(1, 0.5), now=0.85)
    assert state.inflight == 0 and state.remaining == 0
    assert try_acquire(state, now=0.9)[1] == 0
    assert try_acquire(state, now=state.reset_at)[1]  # nothing out any more: the next reset's probe


def test_no_quota_headers_means_unmetered() -> None:
    state = QuotaState()
    _, ticket = try_acquire(state, now=1.0)
    apply_observation(state, ticket, observation_from_headers({}), now=1.0)
    assert all(try_acquire(state, now=1.0)[1] for _ in range(100))


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("00:00:03", 3.0),
        ("00:00:04.2310000", 4.231),
        ("01:02:03", 3723.0),
        ("1.00:00:01", 86401.0),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_quota_reset_headers_are_read_as_dotnet_timespans(text, seconds) -> None:
    assert parse_timespan(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_an_answer_that_missed_an_earlier_request_cannot_raise_the_budget() -> None:
    state = QuotaState(remaining=3, reset_at=5.0)
    late_arrival = try_acquire(state, now=0.2)[1]  # sent first, reaches ARG second
    early_arrival = try_acquire(state, now=0.3)[1]  # sent second, reaches ARG first
    assert state.remaining == 1
    apply_observation(state, late_arrival, Observation(1, 4.9), now=0.6)  # counted both
    # The other answer was computed before late_arrival reached ARG: it says 2 remain, but 1 does.
    apply_observation(state, early_arrival, Observation(2, 4.9), now=0.7)
    assert state.remaining is not None and state.remaining <= 1  # never more than the truth


def test_when_slots_are_scarce_the_waiter_with_the_lower_priority_number_goes_first() -> None:
    state = QuotaState(remaining=0, reset_at=5.0)
    assert try_acquire(state, now=1.0, priority=1, waiter="oldest-batch") == (4.0, 0)
    assert try_acquire(state, now=1.0, priority=2, waiter="newer-batch")[1] == 0
    # After the reset the newer batch asks first, but the one probe is left to the oldest batch.
    wait, ticket = try_acquire(state, now=5.01, priority=2, waiter="newer-batch")
    assert ticket == 0 and wait > 0
    _, probe = try_acquire(state, now=5.02, priority=1, waiter="oldest-batch")
    assert probe
    apply_observation(state, probe, Observation(2, 4.9), now=5.1)
    assert try_acquire(state, now=5.11, priority=2, waiter="newer-batch")[1]  # nobody ahead now


def test_a_waiter_ahead_holds_back_only_the_slots_it_needs() -> None:
    state = QuotaState(remaining=0, reset_at=1.0)
    try_acquire(state, now=0.5, priority=1, waiter="ahead")
    state.remaining, state.reset_at = 2, 6.0  # an answer freed two slots
    assert try_acquire(state, now=1.0, priority=5, waiter="behind")[1]  # one left for "ahead"
    assert try_acquire(state, now=1.0, priority=5, waiter="behind-too")[1] == 0
    assert try_acquire(state, now=1.0, priority=1, waiter="ahead")[1]


def test_a_waiter_that_stopped_asking_no_longer_holds_others_back() -> None:
    state = QuotaState(remaining=0, reset_at=1.0)
    try_acquire(state, now=0.9, priority=1, waiter="gone")  # its thread ends without asking again
    state.remaining, state.reset_at = 1, 6.0
    assert try_acquire(state, now=1.0, priority=9, waiter="next")[1] == 0
    assert try_acquire(state, now=2.0, priority=9, waiter="next")[1]


def test_equal_priorities_do_not_wait_for_each_other() -> None:
    state = QuotaState(remaining=0, reset_at=1.0)
    try_acquire(state, now=0.5, priority=3, waiter="a")
    state.remaining, state.reset_at = 1, 6.0
    assert try_acquire(state, now=1.0, priority=3, waiter="b")[1]


def test_grants_survive_the_round_trip_through_redis() -> None:
    state = QuotaState(remaining=2, reset_at=1.0)
    ticket = try_acquire(state, now=0.5)[1]
    raw = {k.encode(): v.encode() for k, v in state.to_redis().items()}
    restored = QuotaState.from_redis(raw)
    assert restored == state and restored.granted == {str(ticket): [0, 0.5]} and restored.inflight == 1


@pytest.mark.services
def test_waiting_through_redis_leaves_the_budget_untouched_and_holds_back_later_priorities(redis_url) -> None:
    import redis

    principal = f"test-{time.time_ns()}"
    older, newer = RedisPacer(redis.Redis.from_url(redis_url), principal), RedisPacer(redis.Redis.from_url(redis_url), principal)
    client = redis.Redis.from_url(redis_url)
    try:
        ticket, _ = older.acquire(priority=1)  # the probe: nothing more until its answer
        budget = client.hgetall(older.key)
        for pacer, priority, waiter in ((older, 1, "older-batch"), (newer, 2, "newer-batch")):
            pacer._update(lambda state, now, p=priority, w=waiter: try_acquire(state, now, p, w))
        # Waiting wrote only the waiters' own entries: an answer's transaction cannot conflict with it.
        assert client.hgetall(older.key) == budget
        assert set(client.hgetall(older.waiting_key)) == {b"older-batch", b"newer-batch"}
        older.observe(ticket, Observation(1, 4.0))  # one slot: the older batch's, though it asks second
        assert newer._update(lambda state, now: try_acquire(state, now, 2, "newer-batch"))[1] == 0
        assert older._update(lambda state, now: try_acquire(state, now, 1, "older-batch"))[1]
        assert client.hkeys(older.waiting_key) == [b"newer-batch"]  # a granted waiter leaves the list
    finally:
        client.delete(older.key, older.waiting_key)


def test_under_a_full_quota_the_first_priority_finishes_long_before_the_second() -> None:
    server = SlidingWindowServer(limit=4, window=0.4)
    pacer = LocalPacer()
    finished: dict[int, float] = {}
    made = collections.Counter()

    def client(priority: int) -> None:
        for _ in range(16):
            ticket, _waited = pacer.acquire(priority)
            time.sleep(0.002)
            pacer.observe(ticket, server.handle())
            made[priority] += 1
        finished[priority] = time.monotonic()

    threads = [threading.Thread(target=client, args=(p,)) for p in (2, 2, 1, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.rejected == 0
    # 64 requests at 4 per 0.4 s: the second priority gets slots only once the first is done.
    assert finished[1] < finished[2] - 1.5
