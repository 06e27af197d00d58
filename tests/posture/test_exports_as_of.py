"""The posture as of a past time, rebuilt from stored history after the fleet changed between two
scans, equals what was stored right after the first scan; dates the history cannot answer are
refused with a clear message."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from posture.exports import registry
from posture.exports.errors import ExportError
from posture.exports.history import check_as_of, clusters_as_of, history_begins, results_as_of
from posture.models import Cluster, ControlResult, VerdictHistory
from tests.posture.exports_fleet import build, run_scan

pytestmark = pytest.mark.django_db(transaction=True)

ENDPOINT = "microsoft.network/privateendpoints"


def stored_findings() -> dict[tuple[str, str], dict[str, Any]]:
    """What the findings export reads now, per (cluster ARM id, control), of present clusters."""
    rows = ControlResult.objects.filter(cluster__removed_at__isnull=True).values(
        "cluster__arm_id", "control", "status", "raw_status", "reason", "detail", "evidence", "attestation_id", "exception_id", "since"
    )
    return {(r.pop("cluster__arm_id"), r.pop("control")): r for r in rows}


def rebuilt_findings(at: dt.datetime) -> dict[tuple[str, str], dict[str, Any]]:
    present = dict(clusters_as_of(Cluster.objects.all(), at).values_list("pk", "arm_id"))
    return {(present[pk], control): verdict for (pk, control), verdict in results_as_of(present, at).items()}


def change_the_fleet(fleet: Any, added: str) -> None:
    """Three clusters go offline, a private endpoint is deleted, a cluster is added and another removed."""
    silent = (timezone.now() - dt.timedelta(days=3)).isoformat()
    clusters = sorted(fleet.clusters(), key=lambda row: row["id"])
    for row in clusters[:3]:
        fleet.update_cluster(row["id"], {"properties": {"connectivityStatus": "Offline", "lastConnectivityTime": silent}})
    for rows in fleet.tables["resources"].values():
        endpoint = next((r for r in rows if r.get("type", "").lower() == ENDPOINT), None)
        if endpoint is not None:
            rows.remove(endpoint)
            break
    fleet.restore_cluster(added)
    fleet.remove_cluster(clusters[-1]["id"])
    fleet.version += 1


def test_the_posture_as_of_the_first_scan_equals_what_was_stored_right_after_it(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=40, seed=7)
    added = sorted(row["id"] for row in emulator.fleet.clusters())[5]
    emulator.fleet.remove_cluster(added)  # comes in only before the second scan
    scope = emulator_scope(emulator)
    first = run_scan(scope)
    then, clusters_then = stored_findings(), set(Cluster.objects.filter(removed_at__isnull=True).values_list("arm_id", flat=True))
    export_right_after = build("findings", "csv")[0]

    change_the_fleet(emulator.fleet, added)
    run_scan(scope)
    now = stored_findings()
    assert now != then and VerdictHistory.objects.exists()
    # The change reached every kind of history: statuses, evidence alone, clusters in and out.
    assert {k for k in now.keys() & then.keys() if now[k]["status"] != then[k]["status"]}
    assert {k for k in now.keys() & then.keys() if now[k]["status"] == then[k]["status"] and now[k] != then[k]}
    assert added.lower() in {arm.lower() for arm, _ in now} and added.lower() not in {arm.lower() for arm, _ in then}

    at = check_as_of(first.finished_at, [scope.pk])
    assert set(clusters_as_of(Cluster.objects.all(), at).values_list("arm_id", flat=True)) == clusters_then
    assert rebuilt_findings(at) == then
    assert rebuilt_findings(timezone.now()) == now
    # The issue's own check: an export as of the first scan equals the export taken right after it.
    export_as_of, audit = build("findings", "csv", as_of=first.finished_at.isoformat())
    assert export_as_of == export_right_after != build("findings", "csv")[0]
    assert audit.as_of == first.finished_at and audit.filters == {"as_of": first.finished_at.isoformat()}


def test_every_kind_rebuilds_the_past_and_filters_never_select_by_todays_grade(make_emulator, emulator_scope, tmp_path) -> None:
    scope = emulator_scope(make_emulator(clusters=10))
    finished = run_scan(scope).finished_at.isoformat()
    assert all(export.rebuilds_past for export in registry.EXPORTS.values())
    with pytest.raises(ExportError, match=r"with as_of, filters on a cluster's description \(grade\) are refused"):
        build("findings", "csv", as_of=finished, grade="A")
    with pytest.raises(ExportError, match="is not an ISO 8601 time"):
        build("findings", "csv", as_of="last tuesday")
    output = tmp_path / "findings.csv"
    call_command("export", "findings", "--format", "csv", "--as-of", finished, "--output", str(output))
    assert output.read_bytes() == build("findings", "csv")[0]
    with pytest.raises(CommandError, match="is in the future"):
        call_command("export", "findings", "--format", "csv", "--as-of", "2999-01-01T00:00Z", "--output", str(output))


def test_a_rescan_of_an_unchanged_fleet_records_no_history(make_emulator, emulator_scope) -> None:
    scope = emulator_scope(make_emulator(clusters=30))
    run_scan(scope)
    run_scan(scope)
    assert not VerdictHistory.objects.exists()


def test_an_as_of_in_the_future_or_before_the_history_begins_is_refused_with_the_reason(make_emulator, emulator_scope) -> None:
    scope = emulator_scope(make_emulator(clusters=10))
    with pytest.raises(ExportError, match="No evaluation has finished yet"):
        check_as_of(timezone.now(), [scope.pk])
    run_scan(scope)
    begins = history_begins([scope.pk])
    assert begins is not None and check_as_of(begins, [scope.pk]) == begins
    with pytest.raises(ExportError, match=re.escape(f"history for scope 'emulated' begins at {begins.isoformat()}")):
        check_as_of(begins - dt.timedelta(seconds=1), [scope.pk])
    with pytest.raises(ExportError, match="is in the future"):
        check_as_of(timezone.now() + dt.timedelta(hours=1))
