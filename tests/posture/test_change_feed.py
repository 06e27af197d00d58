"""The change feed (GET /api/v1/changes): a client paging through it while scans and
re-evaluations keep landing sees every change exactly once; published entries never change;
cursors are signed and expire with pruning."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.core import signing
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from posture import normalize
from posture.feed.prune import prune
from posture.feed.publish import publish_moves, publish_scan
from posture.feed.read import SALT, BadCursor, CursorExpired, changes_after, encode_cursor
from posture.models import ChangeEvent, Cluster, FeedEntry, Scan, ScanBatch, Scope
from posture.scans import finish
from posture.scans.evaluation import evaluate_scope
from posture.store import bulk
from tests.web.conftest import SUB, add_cluster, finished_scan

HOSTILE = 'evil\r\nBcc: x@evil.test <script>alert("x")</script> \u202e'


def fleet(name: str, clusters: int, hostile: bool = False) -> tuple[Scope, list[Cluster]]:
    """A scope of evaluated clusters (first results: no change yet)."""
    scope = Scope.objects.create(name=name, tenant_id="contoso.onmicrosoft.com")
    scan = finished_scan(scope, [SUB])
    members = [
        add_cluster(scope, scan, n, group=f"{name}-rg", **({"name": HOSTILE} if hostile and n == 0 else {})) for n in range(clusters)
    ]
    evaluate_scope(scope.pk, scan=scan)
    return scope, members


def flip(clusters: list[Cluster]) -> None:
    """What a later scan would store: workload identity switched, so ARC-ID-01 changes."""
    for cluster in clusters:
        cluster.refresh_from_db(fields=["facts"])
        facts = dict(cluster.facts, workload_identity_enabled=not cluster.facts["workload_identity_enabled"])
        Cluster.objects.filter(pk=cluster.pk).update(facts=facts, facts_hash=normalize.fact_hash(facts))


def open_scan(scope: Scope) -> Scan:
    """A running scan whose one batch is stored and saw every cluster of the scope."""
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, trigger=Scan.Trigger.COMMAND, started_at=timezone.now())
    ScanBatch.objects.create(scan=scan, number=1, subscriptions=[SUB], state=ScanBatch.State.DONE, finished_at=timezone.now())
    Cluster.objects.filter(scope=scope).update(last_seen_scan=scan)
    return scan


def read_all(cursor: str | None = None, limit: int = 1000) -> tuple[list[dict[str, Any]], str]:
    entries: list[dict[str, Any]] = []
    while True:
        page = changes_after(cursor, limit)
        entries += page.entries
        cursor = page.next_cursor
        if not page.has_more:
            return entries, cursor


def key(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry["cluster_id"], entry["control"], entry["from_status"], entry["to_status"], entry["scan_id"], entry["at"])


def stored_changes() -> Counter[tuple[Any, ...]]:
    """Every change event in the database, as the feed shows one."""
    rows = ChangeEvent.objects.values_list("cluster_id", "control", "from_status", "to_status", "scan_id", "at")
    return Counter(
        (c, control, f, t, None if scan is None else str(scan), at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"))
        for c, control, f, t, scan, at in rows
    )


# --- exactly once, with real concurrent transactions ------------------------------------------
def in_thread(work: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own database connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.services
def test_a_client_paging_while_scans_and_reevaluations_land_sees_every_change_exactly_once(postgres) -> None:
    scopes = {name: fleet(name, 30) for name in ("alpha", "bravo", "charlie")}
    rounds = 5

    def reevaluations(name: str) -> Callable[[]]:
        def work() -> None:
            scope, clusters = scopes[name]
            rng = random.Random(name)
            for _ in range(rounds):
                flip(rng.sample(clusters, 12))
                evaluate_scope(scope.pk, chunk=4)  # scan-less: each chunk its own transaction

        return work

    def scans(name: str) -> Callable[[]]:
        def work() -> None:
            scope, clusters = scopes[name]
            rng = random.Random(name)
            for _ in range(rounds):
                scan = open_scan(scope)
                flip(rng.sample(clusters, 12))
                evaluate_scope(scope.pk, scan=scan, subscriptions=[SUB], chunk=4)  # the batch, early
                flip(rng.sample(clusters, 12))  # some back again: the final pass rewrites its events
                finish.finish_scan(str(scan.pk))
                scan.refresh_from_db()
                assert scan.state == Scan.State.SUCCEEDED, scan.error

        return work

    errors: list[BaseException] = []
    writers = [in_thread(reevaluations("alpha"), errors), in_thread(scans("bravo"), errors), in_thread(reevaluations("charlie"), errors)]
    seen: list[dict[str, Any]] = []
    cursor, pages_while_landing = None, 0
    while any(w.is_alive() for w in writers):
        page = changes_after(cursor, 3)
        seen += page.entries
        pages_while_landing += bool(page.entries)
        cursor = page.next_cursor
        if not page.has_more:
            time.sleep(0.01)
    for writer in writers:
        writer.join()
    assert not errors, errors
    rest, _ = read_all(cursor, 3)
    seen += rest

    assert pages_while_landing > 5  # the client really read while changes were landing
    assert len({e["cursor"] for e in seen}) == len(seen)  # nothing twice
    assert Counter(key(e) for e in seen) == stored_changes()  # nothing missed, nothing extra
    assert {e["scope"] for e in seen} == {"alpha", "bravo", "charlie"}
    assert {e["scan_id"] is None for e in seen} == {True, False}  # both paths published


@pytest.mark.services
def test_a_publisher_still_open_holds_back_the_ones_after_it(postgres) -> None:
    """Without the publication lock the later transaction would commit a larger number first, and
    a client reading then would step over the earlier one for good."""
    _, (first, second, *_) = fleet("alpha", 2)
    published, release, later_done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    now = timezone.now()

    def earlier() -> None:
        with transaction.atomic():
            publish_moves([{"cluster_id": first.pk, "control": "ARC-ID-01", "from_status": "pass", "to_status": "fail"}], None, now)
            published.set()
            assert release.wait(10)

    def later() -> None:
        assert published.wait(10)
        with transaction.atomic():
            publish_moves([{"cluster_id": second.pk, "control": "ARC-ID-01", "from_status": "fail", "to_status": "pass"}], None, now)
        later_done.set()

    threads = [in_thread(earlier, errors), in_thread(later, errors)]
    assert published.wait(10)
    time.sleep(0.5)
    page = changes_after(None, 10)
    assert page.entries == [] and not later_done.is_set()  # the later one waits its turn
    release.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    entries, _ = read_all(page.next_cursor)
    assert [e["cluster_id"] for e in entries] == [first.pk, second.pk]


@pytest.mark.services
def test_a_chunk_that_publishes_commits_durably_though_evaluation_writes_relax_it(postgres) -> None:
    """An entry read before an asynchronous commit reached the disk could vanish in a crash."""
    _, (cluster, *_) = fleet("alpha", 1)

    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        bulk.relax_durability()
        assert setting() == "off"
        publish_moves([], None, timezone.now())
        assert setting() == "off"  # nothing published: the chunk keeps its cheap commit
        publish_moves(
            [{"cluster_id": cluster.pk, "control": "ARC-ID-01", "from_status": "pass", "to_status": "fail"}], None, timezone.now()
        )
        assert setting() == "on"


# --- what is published, and when ---------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_scans_changes_are_published_when_it_closes_and_never_rewritten() -> None:
    scope, (cluster, other, *_) = fleet("alpha", 3)
    scan = open_scan(scope)
    flip([cluster])
    evaluate_scope(scope.pk, scan=scan, subscriptions=[SUB])
    assert ChangeEvent.objects.filter(scan=scan).count() == 1
    assert changes_after(None, 10).entries == []  # provisional until the scan closes
    finish.finish_scan(str(scan.pk))
    published, cursor = read_all()
    assert [(e["cluster_id"], e["control"], e["scan_id"]) for e in published] == [(cluster.pk, "ARC-ID-01", str(scan.pk))]

    # A late chunk of the closed scan moves the status back: its event is dropped, the published
    # entry stays as read, and the move back is published after it.
    flip([cluster])
    evaluate_scope(scope.pk, scan=scan, subscriptions=[SUB])
    assert not ChangeEvent.objects.filter(scan=scan).exists()
    Cluster.objects.filter(pk=cluster.pk).update(name="renamed")
    # A later scan's changes come after, and nothing earlier is published again.
    later = open_scan(scope)
    flip([other])
    finish.finish_scan(str(later.pk))
    everything, _ = read_all()
    assert everything[0] == published[0]  # its name as it was, its statuses as first read
    moved = ChangeEvent.objects.get(scan=later)
    assert [(e["cluster_id"], e["from_status"], e["to_status"], e["scan_id"]) for e in everything[1:]] == [
        (cluster.pk, published[0]["to_status"], published[0]["from_status"], str(scan.pk)),
        (other.pk, moved.from_status, moved.to_status, str(later.pk)),
    ]
    assert read_all(cursor)[0] == everything[1:]


@pytest.mark.django_db
def test_a_reevaluation_publishes_its_changes_as_it_stores_them() -> None:
    scope, (cluster, *_) = fleet("alpha", 2)
    flip([cluster])
    evaluate_scope(scope.pk)
    (entry,) = changes_after(None, 10).entries
    event = ChangeEvent.objects.get()
    assert key(entry) == next(iter(stored_changes()))
    assert entry["scope"] == "alpha" and entry["resource_id"] == cluster.arm_id and entry["cluster_name"] == cluster.name
    assert (entry["from_status"], entry["to_status"], entry["scan_id"]) == (event.from_status, event.to_status, None)
    assert entry["at"].endswith("Z")


@pytest.mark.django_db
def test_hostile_cluster_names_are_carried_verbatim() -> None:
    scope, (cluster, *_) = fleet("alpha", 2, hostile=True)
    assert cluster.name == HOSTILE
    flip([cluster])
    evaluate_scope(scope.pk)
    scan = open_scan(scope)
    flip([cluster])
    finish.finish_scan(str(scan.pk))
    entries, _ = read_all()
    assert [e["cluster_name"] for e in entries] == [HOSTILE, HOSTILE]  # escaping is the renderer's job


# --- cursors -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_an_empty_feed_gives_the_same_cursor_again() -> None:
    first = changes_after(None, 10)
    assert (first.entries, first.has_more) == ([], False)
    assert changes_after(None, 10).next_cursor == first.next_cursor
    assert changes_after(first.next_cursor, 10).next_cursor == first.next_cursor


@pytest.mark.django_db
def test_pages_follow_each_other_and_the_last_cursor_waits_for_news() -> None:
    scope, clusters = fleet("alpha", 5)
    flip(clusters)
    evaluate_scope(scope.pk)
    one = changes_after(None, 2)
    two = changes_after(one.next_cursor, 2)
    three = changes_after(two.next_cursor, 2)
    assert (one.has_more, two.has_more, three.has_more) == (True, True, False)
    assert [len(p.entries) for p in (one, two, three)] == [2, 2, 1]
    assert three.next_cursor == three.entries[-1]["cursor"]
    idle = changes_after(three.next_cursor, 2)
    assert (idle.entries, idle.next_cursor, idle.has_more) == ([], three.next_cursor, False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda c: c[:5] + ("A" if c[5] != "A" else "B") + c[6:], id="payload-changed"),
        pytest.param(lambda c: c.rsplit(":", 1)[0] + ":" + "x" * 27, id="signature-changed"),
        pytest.param(lambda c: signing.Signer(salt="another.salt").sign_object({"s": 1}), id="other-salt"),
        pytest.param(lambda c: signing.Signer(key="another-key", salt=SALT).sign_object({"s": 1}), id="other-key"),
        pytest.param(lambda c: "12", id="bare-number"),
        pytest.param(lambda c: "", id="empty"),
        pytest.param(lambda c: c * 10, id="too-long"),
        pytest.param(lambda c: signing.Signer(salt=SALT).sign_object([1]), id="signed-not-a-cursor"),
        pytest.param(lambda c: signing.Signer(salt=SALT).sign_object({"s": -1}), id="signed-negative"),
        pytest.param(lambda c: signing.Signer(salt=SALT).sign_object({"s": True}), id="signed-bool"),
        pytest.param(lambda c: encode_cursor(10**9), id="ahead-of-the-feed"),
    ],
)
def test_a_cursor_the_feed_did_not_issue_is_refused(make: Callable[[str], str]) -> None:
    scope, clusters = fleet("alpha", 3)
    flip(clusters)
    evaluate_scope(scope.pk)
    real = changes_after(None, 1).next_cursor
    with pytest.raises(BadCursor):
        changes_after(make(real), 10)


# --- retention ---------------------------------------------------------------------------------
def publish_at(cluster: Cluster, at: dt.datetime, n: int) -> None:
    with transaction.atomic():
        publish_moves(
            [{"cluster_id": cluster.pk, "control": f"C-{i}", "from_status": "pass", "to_status": "fail"} for i in range(n)], None, at
        )


@pytest.mark.django_db
def test_a_cursor_before_pruned_entries_expires_and_one_after_them_does_not(settings) -> None:
    settings.ARC_FEED_RETENTION_DAYS = 30
    _, (cluster, *_) = fleet("alpha", 1)
    now = timezone.now()
    publish_at(cluster, now - dt.timedelta(days=40), 3)
    publish_at(cluster, now - dt.timedelta(days=1), 2)
    old, _ = read_all()
    before_all, at_first, at_last_old = encode_cursor(0), old[0]["cursor"], old[2]["cursor"]
    assert prune(now) == 3
    for cursor in (before_all, at_first):
        with pytest.raises(CursorExpired):
            changes_after(cursor, 10)
    kept, _ = read_all(at_last_old)  # it read everything pruned: it missed nothing
    assert kept == old[3:] == read_all()[0]
    assert prune(now) == 0


@pytest.mark.django_db
def test_a_prune_that_empties_the_feed_still_expires_older_cursors(settings) -> None:
    settings.ARC_FEED_RETENTION_DAYS = 30
    _, (cluster, *_) = fleet("alpha", 1)
    publish_at(cluster, timezone.now() - dt.timedelta(days=40), 2)
    (first, _), _ = read_all()
    assert prune() == 2
    with pytest.raises(CursorExpired):
        changes_after(first["cursor"], 10)
    empty = changes_after(None, 10)
    assert empty.entries == [] and changes_after(empty.next_cursor, 10).next_cursor == empty.next_cursor
    publish_at(cluster, timezone.now(), 1)
    assert [e["control"] for e in changes_after(empty.next_cursor, 10).entries] == ["C-0"]


@pytest.mark.django_db
def test_pruning_keeps_everything_after_the_first_entry_within_retention(settings) -> None:
    """Cut by time alone, an old entry published late would leave a hole no cursor notices."""
    settings.ARC_FEED_RETENTION_DAYS = 30
    _, (cluster, *_) = fleet("alpha", 1)
    now = timezone.now()
    publish_at(cluster, now - dt.timedelta(days=40), 1)
    publish_at(cluster, now - dt.timedelta(days=2), 1)
    publish_at(cluster, now - dt.timedelta(days=45), 1)  # a late publication of an old change
    assert prune(now) == 1
    assert FeedEntry.objects.count() == 2


# --- the hot path ------------------------------------------------------------------------------
def statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]


@pytest.mark.services
def test_publishing_ten_thousand_changes_takes_a_few_statements(postgres) -> None:
    scope, clusters = fleet("alpha", 200)
    moves = [{"cluster_id": c.pk, "control": f"C-{i}", "from_status": "pass", "to_status": "fail"} for c in clusters for i in range(50)]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        publish_moves(moves, None, timezone.now())
    # The clusters' names, the lock, durability; the rows then go in by one COPY (not logged).
    assert statements(queries) == ["SELECT", "SELECT", "SET"]
    assert FeedEntry.objects.count() == 10_000

    scan = open_scan(scope)
    ChangeEvent.objects.bulk_create(
        [
            ChangeEvent(cluster=c, control=f"C-{i}", from_status="fail", to_status="pass", scan=scan, at=timezone.now())
            for c in clusters
            for i in range(50)
        ]
    )
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        assert publish_scan(scan) == 10_000
    assert statements(queries) == ["SELECT", "SET", "INSERT"]  # the lock, durability, INSERT … SELECT
    assert FeedEntry.objects.count() == 20_000
