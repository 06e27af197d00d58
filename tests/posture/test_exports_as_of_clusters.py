"""An export as of a past time shows each cluster as it was then: its name, tags, location,
connectivity, score and the counts of its scorecard, rebuilt from the cluster history, in the order
of its name then. A rescan that changes nothing described or scored writes no cluster history."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from posture.exports.errors import ExportError
from posture.exports.history import history_begins
from posture.models import Cluster, ClusterHistory
from posture.models.inventory import CLUSTER_HISTORY_CHANGES
from tests.posture.exports_fleet import build, read_csv, read_jsonl, run_scan

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINT = "microsoft.network/privateendpoints"
EXPORTS = (("findings", "csv", ""), ("scorecards", "csv", ""), ("scorecards", "jsonl", ""), ("scorecards", "csv", "fail"))


def describe_anew(fleet: Any) -> str:
    """Between two scans: the first cluster by name is renamed to sort last, one is retagged, one
    moves region, three go offline (their scores fall) and a private endpoint is deleted. Returns
    the renamed cluster's old name."""
    clusters = sorted(fleet.clusters(), key=lambda row: (row["name"], row["id"]))
    first, retagged, moved = clusters[0], clusters[1], clusters[2]
    fleet.update_cluster(first["id"], {"name": "zzz-renamed"})
    fleet.update_cluster(retagged["id"], {"tags": {"owner": "someone-else", "cost-center": '=HYPERLINK("x")'}})
    fleet.update_cluster(moved["id"], {"location": "northeurope" if moved["location"] != "northeurope" else "westeurope"})
    silent = (timezone.now() - dt.timedelta(days=3)).isoformat()
    connected = [row for row in clusters[3:] if row["properties"].get("connectivityStatus") == "Connected"]
    for row in connected[:3]:
        fleet.update_cluster(row["id"], {"properties": {"connectivityStatus": "Offline", "lastConnectivityTime": silent}})
    for rows in fleet.tables["resources"].values():
        endpoint = next((r for r in rows if r.get("type", "").lower() == ENDPOINT), None)
        if endpoint is not None:
            rows.remove(endpoint)
            break
    fleet.version += 1
    return first["name"]


def fields_kept_changed(since: dt.datetime) -> set[str]:
    """The fields in which a cluster history row replaced after `since` differs from today's row."""
    today = {row.pop("pk"): row for row in Cluster.objects.values("pk", *CLUSTER_HISTORY_CHANGES)}
    rows = ClusterHistory.objects.filter(replaced_at__gt=since).values("cluster_id", *CLUSTER_HISTORY_CHANGES)
    return {name for row in rows for name in CLUSTER_HISTORY_CHANGES if row[name] != today[row["cluster_id"]][name]}


def test_findings_and_scorecards_as_of_the_first_scan_equal_the_exports_taken_right_after_it(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=40, seed=7)
    scope = emulator_scope(emulator)
    first = run_scan(scope)
    right_after = {(kind, fmt, status): build(kind, fmt, status=status)[0] for kind, fmt, status in EXPORTS}

    renamed = describe_anew(emulator.fleet)
    second = run_scan(scope)
    # Scans recorded the descriptions they rewrote, evaluations the scores.
    assert {"name", "tags", "location", "connectivity_status", "score"} <= fields_kept_changed(first.finished_at)
    assert set(ClusterHistory.objects.values_list("scan_id", flat=True)) == {second.pk}

    as_of = first.finished_at.isoformat()
    for (kind, fmt, status), then in right_after.items():
        assert build(kind, fmt, status=status, as_of=as_of)[0] == then, (kind, fmt, status)
    for kind, fmt, status in EXPORTS[:3]:
        assert build(kind, fmt, status=status)[0] != right_after[(kind, fmt, status)]
    # The renamed cluster comes first then, under its old name, as it did; today it comes last.
    assert read_csv(build("scorecards", "csv", as_of=as_of)[0])[0]["cluster"] == renamed
    assert read_csv(build("scorecards", "csv")[0])[-1]["cluster"] == "zzz-renamed"


def test_a_rescan_writes_no_cluster_history_unless_a_description_or_score_changes(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=30)
    scope = emulator_scope(emulator)
    first = run_scan(scope)
    right_after = read_jsonl(build("scorecards", "jsonl")[0])
    run_scan(scope)
    assert not ClusterHistory.objects.exists()

    # A new contact time alone rewrites the cluster's row, and records nothing.
    contact = next(row for row in emulator.fleet.clusters() if row["properties"].get("connectivityStatus") == "Connected")
    emulator.fleet.update_cluster(contact["id"], {"properties": {"lastConnectivityTime": timezone.now().isoformat()}})
    third = run_scan(scope)
    cluster = Cluster.objects.get(key=contact["id"].lower())
    assert cluster.facts_scan_id == third.pk and cluster.last_connectivity_at > first.finished_at
    assert not ClusterHistory.objects.exists()
    # Its contact time as of the first scan was not kept: blank, never today's; all else is as it was.
    past = read_jsonl(build("scorecards", "jsonl", as_of=first.finished_at.isoformat())[0])
    assert past == [{**row, "last_connectivity_at": ""} if row["arm_id"] == cluster.arm_id else row for row in right_after]
    assert next(row for row in right_after if row["arm_id"] == cluster.arm_id)["last_connectivity_at"]


def test_scorecards_before_the_history_begins_or_filtered_by_description_as_of_a_past_time_are_refused(
    make_emulator, emulator_scope
) -> None:
    scope = emulator_scope(make_emulator(clusters=10))
    first = run_scan(scope)
    begins = history_begins([scope.pk])
    assert begins is not None
    with pytest.raises(ExportError, match=re.escape(f"history for scope 'emulated' begins at {begins.isoformat()}")):
        build("scorecards", "csv", as_of=(begins - dt.timedelta(seconds=1)).isoformat())
    # Descriptions and scores are recorded from when their migration was applied: the history begins then.
    recorded = MigrationRecorder.Migration.objects.filter(app="posture", name="0009_cluster_history")
    applied = recorded.get().applied
    later = first.finished_at + dt.timedelta(seconds=1)
    try:
        recorded.update(applied=later)
        with pytest.raises(ExportError, match=re.escape(f"history for scope 'emulated' begins at {later.isoformat()}")):
            build("scorecards", "csv", as_of=first.finished_at.isoformat())
    finally:
        recorded.update(applied=applied)

    as_of = first.finished_at.isoformat()
    for name, value in (("q", "arc"), ("location", "westeurope"), ("tag", "env"), ("grade", "A")):
        with pytest.raises(ExportError, match=rf"with as_of, filters on a cluster's description \({name}\) are refused"):
            build("scorecards", "csv", as_of=as_of, **{name: value})
    # The parts of the ARM id do not change: they select as they would have then.
    subscription = Cluster.objects.order_by("pk").values_list("subscription_id", flat=True).first()
    assert read_csv(build("scorecards", "csv", as_of=as_of, subscription=subscription)[0]) == read_csv(
        build("scorecards", "csv", subscription=subscription)[0]
    )
