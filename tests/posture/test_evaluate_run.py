"""An evaluation run writes only what changed, records drift, scores and snapshots the fleet."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from posture import normalize
from posture.models import ChangeEvent, Cluster, ControlResult, FleetSnapshot, Scope, ScoreHistory
from posture.scans.evaluation import evaluate_scope

SUB = "11111111-1111-1111-1111-111111111111"


def add_cluster(scope, n, **row):
    now = timezone.now()
    base = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c{n}",
        "name": f"c{n}",
        "location": "eastus",
        "subscriptionId": SUB,
        "resourceGroup": "rg",
        "connectivityStatus": "Connected",
        "lastConnectivityTime": now.isoformat(),
        "privateLinkState": "Disabled",
        "workloadIdentityEnabled": True,
    }
    base.update(row)
    facts = normalize.finish(normalize.cluster_record(base))
    return Cluster.objects.create(
        arm_id=base["id"],
        name=base["name"],
        subscription_id=SUB,
        resource_group="rg",
        scope=scope,
        facts=facts,
        facts_hash=normalize.fact_hash(facts),
        first_seen_at=now,
        last_seen_at=now,
        connectivity_status=facts["connectivity_status"] or "",
        last_connectivity_at=normalize.parse_time(facts["last_connectivity_time"]) if facts["last_connectivity_time"] else None,
    )


@pytest.fixture
def scope(db):
    return Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")


@pytest.mark.django_db
def test_first_run_writes_results_but_no_drift(scope) -> None:
    for n in range(3):
        add_cluster(scope, n)
    stats = evaluate_scope(scope.pk)
    assert stats.clusters == 3 and stats.results_written == 3 * 15 and stats.change_events == 0
    cluster = Cluster.objects.get(name="c0")
    assert cluster.grade and cluster.score is not None and cluster.results_hash
    result = ControlResult.objects.get(cluster=cluster, control="ARC-PL-01")
    assert result.status == "fail" and result.evidence == {"private_link_state": "Disabled", "private_link_scope_id": None}
    snapshot = FleetSnapshot.objects.get()
    assert snapshot.clusters == 3 and snapshot.controls["ARC-PL-01"] == {"fail": 3}
    assert snapshot.sections["cis-k8s"]["5.3.2"] == {"unknown": 3}
    assert ScoreHistory.objects.count() == 3


@pytest.mark.django_db
def test_a_rerun_without_changes_writes_nothing(scope) -> None:
    for n in range(5):
        add_cluster(scope, n)
    evaluate_scope(scope.pk)
    before = {r.pk: r.updated_at for r in ControlResult.objects.all()}
    stats = evaluate_scope(scope.pk)
    assert (stats.results_written, stats.change_events, stats.clusters_changed) == (0, 0, 0)
    assert {r.pk: r.updated_at for r in ControlResult.objects.all()} == before
    assert ScoreHistory.objects.count() == 5
    assert FleetSnapshot.objects.count() == 2


@pytest.mark.django_db
def test_a_changed_fact_gives_exactly_its_change_events(scope) -> None:
    cluster = add_cluster(scope, 1)
    add_cluster(scope, 2)
    evaluate_scope(scope.pk)
    facts = dict(cluster.facts, workload_identity_enabled=False)
    Cluster.objects.filter(pk=cluster.pk).update(facts=facts, facts_hash=normalize.fact_hash(facts))
    stats = evaluate_scope(scope.pk)
    assert stats.clusters_changed == 1 and stats.change_events == 1 and stats.results_written == 1
    event = ChangeEvent.objects.get()
    assert (event.control, event.from_status, event.to_status) == ("ARC-ID-01", "pass", "fail")
    result = ControlResult.objects.get(cluster=cluster, control="ARC-ID-01")
    assert result.since == event.at
    assert ScoreHistory.objects.filter(cluster=cluster).count() == 2
    assert FleetSnapshot.objects.latest().changes["events"] == 1


@pytest.mark.django_db
def test_time_alone_makes_a_silent_cluster_stale(scope) -> None:
    cluster = add_cluster(scope, 1, lastConnectivityTime=(timezone.now() - dt.timedelta(hours=20)).isoformat())
    evaluate_scope(scope.pk)
    assert ControlResult.objects.get(cluster=cluster, control="ARC-ID-01").status == "pass"
    evaluate_scope(scope.pk, now=timezone.now() + dt.timedelta(hours=5))
    stale = ControlResult.objects.get(cluster=cluster, control="ARC-ID-01")
    assert (stale.status, stale.reason) == ("unknown", "stale")
    assert ControlResult.objects.get(cluster=cluster, control="ARC-EV-01").status == "fail"


@pytest.mark.django_db
def test_removed_clusters_leave_the_snapshot(scope) -> None:
    add_cluster(scope, 1)
    gone = add_cluster(scope, 2)
    Cluster.objects.filter(pk=gone.pk).update(removed_at=timezone.now())
    evaluate_scope(scope.pk)
    assert FleetSnapshot.objects.get().clusters == 1


@pytest.mark.django_db
def test_only_clusters_whose_inputs_changed_are_checked_again(scope) -> None:
    from posture.models import AzureResource

    pls = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.HybridCompute/privateLinkScopes/pls"
    for n in range(4):
        add_cluster(scope, n, **({"privateLinkState": "Enabled", "privateLinkScopeResourceId": pls} if n < 2 else {}))
    evaluate_scope(scope.pk)
    assert evaluate_scope(scope.pk).clusters_checked == 0
    assert FleetSnapshot.objects.latest().controls["ARC-PL-02"] == {"unknown": 2, "not_applicable": 2}
    now = timezone.now()
    scope_row = AzureResource.objects.create(
        key=pls.lower(),
        arm_id=pls,
        type="microsoft.hybridcompute/privatelinkscopes",
        name="pls",
        subscription_id=SUB,
        data={"id": pls, "type": "microsoft.hybridcompute/privatelinkscopes", "public_network_access": "Disabled", "connections": []},
        data_hash="v1",
        first_seen_at=now,
        last_seen_at=now,
    )
    stats = evaluate_scope(scope.pk)
    assert stats.clusters_checked == 2 and stats.change_events == 2 * 2  # PL-02 and PL-03 moved on the two users
    assert FleetSnapshot.objects.latest().controls["ARC-PL-02"] == {"pass": 2, "not_applicable": 2}
    assert evaluate_scope(scope.pk).clusters_checked == 0
    AzureResource.objects.filter(pk=scope_row.pk).update(data={**scope_row.data, "public_network_access": "Enabled"}, data_hash="v2")
    stats = evaluate_scope(scope.pk)
    assert stats.clusters_checked == 2 and stats.change_events == 2


@pytest.mark.django_db
def test_a_status_moved_twice_within_one_scan_is_one_change_or_none(scope) -> None:
    from posture.models import Scan

    cluster = add_cluster(scope, 0)
    evaluate_scope(scope.pk)  # before the scan: workload identity passes
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, started_at=timezone.now())

    def set_identity(enabled: bool | None) -> None:
        facts = {**Cluster.objects.get(pk=cluster.pk).facts, "workload_identity_enabled": enabled}
        Cluster.objects.filter(pk=cluster.pk).update(facts=facts, facts_hash=normalize.fact_hash(facts))

    set_identity(None)  # an early batch evaluation sees it missing ...
    evaluate_scope(scope.pk, scan=scan, subscriptions=[SUB])
    set_identity(False)  # ... and the final pass sees it disabled: one change, pass → fail
    evaluate_scope(scope.pk, scan=scan)
    events = list(ChangeEvent.objects.filter(cluster=cluster).values_list("control", "from_status", "to_status", "scan_id"))
    assert events == [("ARC-ID-01", "pass", "fail", scan.pk)]
    assert ScoreHistory.objects.filter(cluster=cluster, scan=scan).count() == 1

    again = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, started_at=timezone.now())
    set_identity(True)  # moved early in the next scan, back where it was by its end: no change
    evaluate_scope(scope.pk, scan=again, subscriptions=[SUB])
    set_identity(False)
    evaluate_scope(scope.pk, scan=again)
    assert not ChangeEvent.objects.filter(scan=again).exists()
