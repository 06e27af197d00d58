"""A scan batch and an evaluation rewriting the same cluster at once: whichever writes second waits
for the first to commit and records the row the first wrote, so the cluster history holds each
state the cluster was in, never a stale one twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections, transaction
from django.utils import timezone

from posture import normalize
from posture.evaluate.scoring import ClusterScore, grade_for
from posture.models import Cluster, ClusterHistory, Scan, Scope
from posture.store.facts import store_clusters
from posture.store.results import Entry, store_scores
from tests.web.conftest import SUB, add_cluster, cluster_row, finished_scan

pytestmark = pytest.mark.django_db(transaction=True)

OLD_SCORE, NEW_SCORE = 80.0, 40.0


def in_transaction(write: Callable[[], None], errors: list[BaseException], written: threading.Event, go: threading.Event) -> None:
    """`write` in a transaction of this thread's connection, which stays open until `go` once
    `written` is set."""
    try:
        with transaction.atomic():
            write()
            written.set()
            go.wait(10)
    except BaseException as error:  # reported by the test's thread
        errors.append(error)
    finally:
        connections.close_all()


@pytest.mark.parametrize("first", ["scan", "evaluation"])
def test_a_scan_and_an_evaluation_rewriting_a_cluster_at_once_each_record_the_row_they_replace(postgres: None, first: str) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    cluster = add_cluster(scope, finished_scan(scope, [SUB]), 1, name="before")
    Cluster.objects.filter(pk=cluster.pk).update(score=OLD_SCORE, grade=grade_for(OLD_SCORE), coverage=100.0)
    second = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, trigger=Scan.Trigger.COMMAND)
    renamed = normalize.finish(normalize.cluster_record(cluster_row(1, name="after")))
    row = {"pk": cluster.pk, "score": OLD_SCORE, "grade": grade_for(OLD_SCORE), "coverage": 100.0}
    rescored = Entry(row, {}, ClusterScore(NEW_SCORE, grade_for(NEW_SCORE), 100.0, 3), "d" * 64, "i" * 64, "", "", [])
    writes = {
        "scan": lambda: store_clusters({cluster.key: renamed}, second, timezone.now()),
        "evaluation": lambda: store_scores([rescored], None, timezone.now()),
    }
    later = "evaluation" if first == "scan" else "scan"
    errors: list[BaseException] = []
    go, written, also_written = threading.Event(), threading.Event(), threading.Event()
    holder = threading.Thread(target=in_transaction, args=(writes[first], errors, written, go))
    holder.start()
    assert written.wait(10), errors
    other = threading.Thread(target=in_transaction, args=(writes[later], errors, also_written, go))
    other.start()
    time.sleep(1.0)  # the second writer reads the row now, or waits for the first to commit
    assert not also_written.is_set()  # its rewrite waits for the first's commit in any case
    go.set()
    holder.join(10)
    other.join(10)
    assert not errors

    recorded = set(ClusterHistory.objects.values_list("scan_id", "name", "score"))
    if first == "scan":  # the evaluation replaced the renamed row
        assert recorded == {(second.pk, "before", OLD_SCORE), (None, "after", OLD_SCORE)}
    else:  # the scan replaced the rescored row
        assert recorded == {(None, "before", OLD_SCORE), (second.pk, "before", NEW_SCORE)}
    assert Cluster.objects.values_list("name", "score").get(pk=cluster.pk) == ("after", NEW_SCORE)
