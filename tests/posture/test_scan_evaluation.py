"""Scanning the emulator fleet end to end: verdicts are written once, then only on change."""

from __future__ import annotations

from typing import Any

import pytest

from posture.models import ChangeEvent, Cluster, ControlResult, FleetSnapshot, Scan, ScoreHistory
from posture.scans.request import scan_request

pytestmark = pytest.mark.django_db(transaction=True)


def run_scan(scope: Any) -> Scan:
    scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    return scan


def test_a_rescan_without_changes_writes_nothing_and_one_change_gives_exactly_its_events(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=120)
    scope = emulator_scope(emulator)
    first = run_scan(scope)
    assert ControlResult.objects.count() == 120 * 15
    written = dict(ControlResult.objects.values_list("pk", "updated_at"))
    history = ScoreHistory.objects.count()

    second = run_scan(scope)
    assert ChangeEvent.objects.count() == 0
    assert dict(ControlResult.objects.values_list("pk", "updated_at")) == written
    assert ScoreHistory.objects.count() == history
    assert FleetSnapshot.objects.get(scan=second).controls == FleetSnapshot.objects.get(scan=first).controls

    target = next(
        c
        for c in Cluster.objects.filter(connectivity_status="Connected").order_by("pk")
        if c.results.get(control="ARC-ID-01").status == "pass"
    )
    emulator.fleet.update_cluster(target.arm_id, {"properties": {"securityProfile": {"workloadIdentity": {"enabled": False}}}})
    third = run_scan(scope)
    events = list(ChangeEvent.objects.values_list("cluster_id", "control", "from_status", "to_status", "scan_id"))
    assert events == [(target.pk, "ARC-ID-01", "pass", "fail", third.pk)]
    rewritten = {pk for pk, at in ControlResult.objects.values_list("pk", "updated_at") if written[pk] != at}
    assert rewritten == {target.results.get(control="ARC-ID-01").pk}
    assert FleetSnapshot.objects.get(scan=third).changes["events"] == 1
    assert ScoreHistory.objects.filter(cluster=target).count() == 2


def test_batches_are_evaluated_as_they_land_and_the_last_one_by_the_final_pass(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1
    emulator = make_emulator(clusters=200)  # four subscriptions
    scan = run_scan(emulator_scope(emulator))
    batches = list(scan.batches.order_by("number"))
    assert len(batches) > 2
    final = FleetSnapshot.objects.get(scan=scan).created_at
    evaluated = {
        b.number: set(Cluster.objects.filter(subscription_id__in=b.subscriptions).values_list("evaluated_at", flat=True)) for b in batches
    }
    assert evaluated[batches[-1].number] == {final}  # evaluated once, in the final pass
    # Evaluated early; only clusters whose inputs a later batch changed are checked again.
    assert any(at < final for at in evaluated[batches[0].number])
    assert ControlResult.objects.count() == 200 * 15


def test_a_first_scan_in_batches_records_no_drift_and_one_score_point_per_cluster(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1  # early batch verdicts that later batches revise
    emulator = make_emulator(clusters=200)
    scope = emulator_scope(emulator)
    scan = run_scan(scope)
    assert ChangeEvent.objects.count() == 0  # every cluster is new: nothing changed
    assert ScoreHistory.objects.filter(scan=scan).count() == ScoreHistory.objects.count() == 200
    assert FleetSnapshot.objects.get(scan=scan).changes["events"] == 0
    run_scan(scope)
    assert ChangeEvent.objects.count() == 0 and ScoreHistory.objects.count() == 200


def test_a_batch_evaluation_left_waiting_until_every_batch_is_stored_is_left_to_the_final_pass(
    make_emulator, emulator_scope, settings
) -> None:
    from posture.models import ScanBatch
    from posture.scans import finish

    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1
    scan = run_scan(emulator_scope(make_emulator(clusters=200)))
    first, second = scan.batches.order_by("number")[:2]
    clusters = Cluster.objects.filter(subscription_id__in=first.subscriptions)
    Scan.objects.filter(pk=scan.pk).update(state=Scan.State.RUNNING)
    clusters.update(evaluated_inputs="")  # as if never evaluated

    finish.evaluate_batch(first.pk)  # every batch is done: the final pass would do it once
    assert set(clusters.values_list("evaluated_inputs", flat=True)) == {""}

    ScanBatch.objects.filter(pk=second.pk).update(state=ScanBatch.State.RUNNING)
    finish.evaluate_batch(first.pk)  # another batch still collecting: evaluate now
    assert "" not in set(clusters.values_list("evaluated_inputs", flat=True))


def test_a_batch_evaluation_stops_at_its_next_chunk_once_every_batch_is_stored(
    make_emulator, emulator_scope, settings, monkeypatch
) -> None:
    from posture.models import ScanBatch
    from posture.scans import finish

    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1
    scan = run_scan(emulator_scope(make_emulator(clusters=200)))
    first, second = scan.batches.order_by("number")[:2]
    clusters = Cluster.objects.filter(subscription_id__in=first.subscriptions)
    assert clusters.count() > 20
    Scan.objects.filter(pk=scan.pk).update(state=Scan.State.RUNNING)
    ScanBatch.objects.filter(pk=second.pk).update(state=ScanBatch.State.RUNNING)
    clusters.update(evaluated_inputs="")
    monkeypatch.setattr(finish, "BATCH_EVALUATION_CHUNK", 10)
    looks = []
    collecting = finish.collecting

    def second_batch_lands_during_the_first_chunk(scan_id: Any) -> bool:
        looks.append(scan_id)
        if len(looks) == 2:
            ScanBatch.objects.filter(pk=second.pk).update(state=ScanBatch.State.DONE)
        return collecting(scan_id)

    monkeypatch.setattr(finish, "collecting", second_batch_lands_during_the_first_chunk)
    finish.evaluate_batch(first.pk)
    assert clusters.exclude(evaluated_inputs="").count() == 10  # the first chunk only, kept
    assert not Scan.objects.get(pk=scan.pk).scope.evaluation_claimed_at  # the final pass can start
