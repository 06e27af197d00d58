"""Damaged Resource Graph rows (columns dropped or oddly typed) never replace a cluster's last
good facts: they are refused, reported on the scan and on the cluster, and change nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from azure_emulator.faults import MANGLE_MODES, Fault, mangle_rows
from posture import normalize
from posture.models import ChangeEvent, Cluster, ControlResult, FleetSnapshot, Scan, Status
from posture.normalize import shapes
from posture.scans.request import scan_request
from posture.scans.sweep import BatchData
from tests.posture.faults import RECOVERY_BOUND, wait_for, worker_env

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/Edge-RG/providers/Microsoft.Kubernetes/connectedClusters/store-042"
)
# Aims a fault at the clusters query only (others mention connected clusters in a filter).
CLUSTERS_QUERY = "type =~ 'microsoft.kubernetes/connectedclusters'"


def cluster_row(**overrides: Any) -> dict[str, Any]:
    """A clusters row as Resource Graph writes it: every tostring() column present."""
    row = {
        "id": CLUSTER_ID,
        "name": "store-042",
        "location": "eastus",
        "subscriptionId": "00000000-0000-0000-0000-0000000000aa",
        "resourceGroup": "Edge-RG",
        "kind": "ProvisionedCluster",
        "tags": {"env": "prod"},
        "connectivityStatus": "Connected",
        "lastConnectivityTime": "2026-11-26T10:11:12Z",
        "provisioningState": "Succeeded",
        "distribution": "aks_workload",
        "infrastructure": "azure_stack_hci",
        "kubernetesVersion": "1.30.4",
        "agentVersion": "1.21.10",
        "privateLinkState": "Disabled",
        "privateLinkScopeResourceId": "",
        "gatewayEnabled": True,
        "gatewayResourceId": "",
        "workloadIdentityEnabled": True,
        "oidcIssuerEnabled": True,
        "azureRbacEnabled": False,
        "agentAutoUpgrade": "Enabled",
    }
    row.update(overrides)
    return row


# --- the rules, in process --------------------------------------------------------------------
@pytest.mark.parametrize("how", MANGLE_MODES)
def test_every_kind_of_damage_the_emulator_does_is_refused(how: str) -> None:
    (damaged,) = mangle_rows([cluster_row()], Fault("mangle", "arg", how=how))
    issues = shapes.issues("clusters", damaged)
    assert issues, f"a {how!r} row passed as well-formed"
    assert all(set(issue) == {"field", "issue"} for issue in issues)


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"connectivityStatus": None}, "connectivityStatus"),  # tostring() never yields null
        ({"privateLinkState": 1}, "privateLinkState"),
        ({"gatewayEnabled": "true"}, "gatewayEnabled"),
        ({"gatewayEnabled": {"x": 1}}, "gatewayEnabled"),
        ({"tags": "env=prod"}, "tags"),
        ({"name": ""}, "name"),
        ({"subscriptionId": "true"}, "subscriptionId"),
    ],
)
def test_a_column_of_the_wrong_type_refuses_the_row(overrides: dict[str, Any], field: str) -> None:
    assert field in {issue["field"] for issue in shapes.issues("clusters", cluster_row(**overrides))}


def test_a_column_dropped_from_the_row_refuses_it() -> None:
    row = cluster_row()
    del row["privateLinkState"]
    assert {"field": "privateLinkState", "issue": "missing"} in shapes.issues("clusters", row)


def test_a_property_genuinely_absent_from_a_well_formed_row_still_reads_as_absent() -> None:
    # tostring() of an absent property is ""; dynamic columns are null or left out.
    row = cluster_row(connectivityStatus="", privateLinkState="", lastConnectivityTime="", tags=None, kind=None, gatewayEnabled=None)
    del row["workloadIdentityEnabled"]
    assert shapes.issues("clusters", row) == []
    record = normalize.cluster_record(row)
    assert record["connectivity_status"] is None and record["private_link_state"] is None
    assert record["gateway_enabled"] is None and record["workload_identity_enabled"] is None
    assert record["last_connectivity_time"] is None and record["tags"] == {} and record["kind"] is None
    assert normalize.network_path(record) == "unknown"  # absent never reads as a pass


def test_well_formed_rows_with_odd_content_are_kept_with_their_problems() -> None:
    row = cluster_row(connectivityStatus="Hibernating", lastConnectivityTime="yesterday")
    assert shapes.issues("clusters", row) == []
    record = normalize.cluster_record(row)
    assert record["connectivity_status"] == "Hibernating" and record["last_connectivity_time"] is None


@pytest.mark.parametrize(
    "shape,row",
    [
        (
            "network_resources",
            {"id": CLUSTER_ID, "name": "pls", "location": "eastus", "subscriptionId": "00000000-0000-0000-0000-0000000000aa"},
        ),
        ("extensions", {"id": CLUSTER_ID + "/providers/Microsoft.KubernetesConfiguration/extensions/azurepolicy", "name": "azurepolicy"}),
        ("provisioned_cluster_instance", {"id": "x"}),
        ("provisioned_cluster_instance", {"properties": "Succeeded"}),
    ],
)
def test_other_rows_without_their_type_or_properties_are_refused(shape: str, row: dict[str, Any]) -> None:
    issues = shapes.issues(shape, row)
    assert issues and {f for i in issues for f in i["field"].split(", ")} & {"type", "extensionType", "properties"}


def test_a_refused_child_row_withholds_its_clusters_new_facts() -> None:
    data = BatchData()
    record = normalize.cluster_record(cluster_row())
    data.clusters[CLUSTER_ID.lower()] = record
    extension_id = CLUSTER_ID + "/providers/Microsoft.KubernetesConfiguration/extensions/azurepolicy"
    data.refuse("extensions", normalize.owner_of_child(extension_id), [{"field": "extensionType", "issue": "missing"}])
    policy_id = "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/r/providers/Microsoft.Kubernetes/connectedClusters/gone/providers/Microsoft.PolicyInsights/policyStates/p"
    data.refuse("policy_states", normalize.owner_of_child(policy_id), [{"field": "resourceId", "issue": "missing"}])
    data.refuse("assessments", None, [{"field": "(row)", "issue": "not an object"}])
    data.settle_refusals()
    assert data.clusters == {} and data.cluster_count == 1
    assert data.refused_clusters[CLUSTER_ID.lower()]["id"] == CLUSTER_ID
    assert data.refused_rows == 3
    # Neither the cluster of another batch nor a row without an id is a cluster of this one.
    assert sorted(i["query"] for i in data.unattributed) == ["assessments", "policy_states"]


# --- scans, tasks in process ------------------------------------------------------------------
def run_scan(scope: Any) -> Scan:
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    assert created
    scan.refresh_from_db()
    return scan


def mangled_subscriptions(emulator: Any) -> set[str]:
    return {s.lower() for r in emulator.requests("arg") if "mangle" in (r["fault"] or "") for s in r["body"]["subscriptions"]}


def results_of(keys: set[str]) -> dict[tuple[str, str], tuple[str, Any]]:
    return {
        (r.cluster.key, r.control): (r.status, r.updated_at)
        for r in ControlResult.objects.filter(cluster__key__in=keys).select_related("cluster").only("status", "updated_at", "cluster__key")
    }


def assert_damage_contained(emulator: Any, damaged_scan: Scan, facts: dict[str, tuple[str, Any]], results: dict) -> set[str]:
    """What a scan that received damaged clusters rows must leave behind; returns the damaged keys."""
    subscriptions = mangled_subscriptions(emulator)
    damaged = set(Cluster.objects.filter(subscription_id__in=subscriptions).values_list("key", flat=True))
    assert damaged and len(damaged) < len(facts), "the test needs damaged and clean clusters"
    assert damaged_scan.state == Scan.State.PARTIAL, damaged_scan.error  # rows were refused: not a clean success
    assert damaged_scan.clusters == len(facts) == Cluster.objects.count()
    assert damaged_scan.clusters_removed == 0 and not Cluster.objects.filter(removed_at__isnull=False).exists()
    assert damaged_scan.data_problems["rows"] == len(damaged) == damaged_scan.data_problems["clusters"]
    assert {e["query"] for e in damaged_scan.data_problems["examples"]} == {"clusters"}
    assert any("refused" in w for w in damaged_scan.warnings)
    for cluster in Cluster.objects.filter(key__in=damaged):
        assert (cluster.facts_hash, cluster.facts_scan_id) == facts[cluster.key]  # the good scan's facts
        assert cluster.last_seen_scan_id == damaged_scan.pk  # seen, so never marked removed
        assert cluster.data_problems and {p["query"] for p in cluster.data_problems} == {"clusters"}
    assert not Cluster.objects.exclude(key__in=damaged).exclude(data_problems=[]).exists()
    assert ChangeEvent.objects.filter(scan=damaged_scan).count() == 0
    assert results_of(damaged) == {k: v for k, v in results.items() if k[0] in damaged}
    assert FleetSnapshot.objects.filter(scan=damaged_scan).count() == 1
    return damaged


@pytest.mark.django_db(transaction=True)
def test_damaged_cluster_rows_never_replace_the_last_good_facts(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1  # one clusters page per subscription
    emulator = make_emulator(clusters=150)
    scope = emulator_scope(emulator)
    good = run_scan(scope)
    assert good.state == Scan.State.SUCCEEDED and good.data_problems == {}
    facts = {c.key: (c.facts_hash, c.facts_scan_id) for c in Cluster.objects.all()}
    results = results_of(set(facts))

    emulator.faults.mangle_rows("arg", how="mixed", query=CLUSTERS_QUERY)
    damaged_scan = run_scan(scope)
    damaged = assert_damage_contained(emulator, damaged_scan, facts, results)

    clean = run_scan(scope)
    assert clean.state == Scan.State.SUCCEEDED and clean.data_problems == {}
    assert not Cluster.objects.exclude(data_problems=[]).exists()  # cleared by well-formed rows
    assert {c.key: c.facts_hash for c in Cluster.objects.filter(key__in=damaged)} == {k: facts[k][0] for k in damaged}
    assert ChangeEvent.objects.filter(scan=clean).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_damaged_extension_row_keeps_its_clusters_last_good_facts(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    scope = emulator_scope(emulator)
    assert run_scan(scope).state == Scan.State.SUCCEEDED
    before = {c.key: c.facts_hash for c in Cluster.objects.all()}
    emulator.faults.mangle_rows("arg", how="drop", query="kubernetesconfigurationresources")
    scan = run_scan(scope)
    refused = {c.key for c in Cluster.objects.exclude(data_problems=[])}
    assert scan.state == Scan.State.PARTIAL and refused
    assert scan.data_problems["clusters"] == len(refused) and {e["query"] for e in scan.data_problems["examples"]} == {"extensions"}
    assert {c.key: c.facts_hash for c in Cluster.objects.all()} == before
    assert ChangeEvent.objects.filter(scan=scan).count() == 0


@pytest.mark.django_db(transaction=True)
def test_damaged_network_resource_rows_keep_their_last_good_data(make_emulator, emulator_scope) -> None:
    from posture.models import AzureResource

    emulator = make_emulator(clusters=60)
    scope = emulator_scope(emulator)
    assert run_scan(scope).state == Scan.State.SUCCEEDED
    before = dict(AzureResource.objects.values_list("key", "data_hash"))
    clusters = {c.key: c.facts_hash for c in Cluster.objects.all()}
    assert before
    emulator.faults.mangle_rows("arg", how="drop", query="microsoft.keyvault/vaults")  # the network resources query only
    scan = run_scan(scope)
    assert scan.state == Scan.State.PARTIAL
    assert scan.data_problems["resources"] == len(before) and scan.data_problems["clusters"] == 0
    assert dict(AzureResource.objects.values_list("key", "data_hash")) == before
    assert not AzureResource.objects.filter(removed_at__isnull=False).exists()
    assert {c.key: c.facts_hash for c in Cluster.objects.all()} == clusters
    assert ChangeEvent.objects.filter(scan=scan).count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_instance_body_without_properties_keeps_its_clusters_last_good_facts(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    scope = emulator_scope(emulator)
    assert run_scan(scope).state == Scan.State.SUCCEEDED
    before = {c.key: c.facts_hash for c in Cluster.objects.all()}
    assert Cluster.objects.filter(kind__iexact="ProvisionedCluster").exists()
    emulator.faults.mangle_rows("arm", how="drop", path="provisionedclusterinstances")
    scan = run_scan(scope)
    (refused,) = Cluster.objects.exclude(data_problems=[])
    assert scan.state == Scan.State.PARTIAL and scan.data_problems["clusters"] == 1
    assert refused.data_problems == [{"query": "provisioned_cluster_instance", "field": "properties", "issue": "missing"}]
    assert refused.facts["provisioned_instance"]["found"] is True  # the last good profile, not "found, all unknown"
    assert {c.key: c.facts_hash for c in Cluster.objects.all()} == before
    assert ChangeEvent.objects.filter(scan=scan).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_cluster_first_seen_through_a_damaged_row_is_stored_with_every_fact_unknown(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    emulator.faults.mangle_rows("arg", how="mixed", query=CLUSTERS_QUERY)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.PARTIAL
    assert Cluster.objects.count() == 60 == scan.clusters == scan.data_problems["clusters"]
    for cluster in Cluster.objects.all():
        assert cluster.data_problems
        assert cluster.network_path == "unknown" and cluster.facts["connectivity_status"] is None
        assert cluster.arm_id.rsplit("/", 1)[-1].startswith(cluster.name)  # from the id, not from the damaged row
    # Unknown data never became a pass.
    assert not ControlResult.objects.filter(status=Status.PASS, control="ARC-ID-01").exists()


# --- the page shows it, escaped -------------------------------------------------------------
@pytest.mark.django_db
def test_data_problems_are_shown_escaped_on_the_scan_and_the_cluster(client, viewer) -> None:
    from django.utils import timezone

    from posture.models import Scope

    scope = Scope.objects.create(name="s", tenant_id="contoso.onmicrosoft.com")
    hostile = "/subscriptions/x/<script>alert(1)</script>"
    scan = Scan.objects.create(
        scope=scope,
        state=Scan.State.PARTIAL,
        data_problems={
            "rows": 2,
            "clusters": 1,
            "resources": 0,
            "examples": [{"query": "clusters", "id": hostile, "field": "name", "issue": "missing"}],
        },
    )
    now = timezone.now()
    cluster = Cluster.objects.create(
        arm_id=CLUSTER_ID,
        name="store-042",
        subscription_id="00000000-0000-0000-0000-0000000000aa",
        resource_group="Edge-RG",
        scope=scope,
        first_seen_at=now,
        last_seen_at=now,
        last_seen_scan=scan,
        data_problems=[{"query": "clusters", "field": "<b>tags</b>", "issue": "must be object or null"}],
    )
    client.force_login(viewer)
    page = client.get(f"/scans/{scan.pk}/").content.decode()
    assert "Data problems" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Data problem" in page and "&lt;b&gt;tags&lt;/b&gt;" in page and "must be object or null" in page


def test_the_row_fixture_is_well_formed() -> None:
    assert shapes.issues("clusters", copy.deepcopy(cluster_row())) == []


# --- the fault matrix: real Celery workers on PostgreSQL and Redis ------------------------------
def scan_on_workers(scope: Any, worker: Any) -> Scan:
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    assert created
    wait_for(lambda: Scan.objects.get(pk=scan.pk).is_finished, RECOVERY_BOUND, lambda: worker.log()[-4000:])
    scan.refresh_from_db()
    return scan


@pytest.mark.services
@pytest.mark.slow
def test_damaged_rows_on_real_workers_change_nothing_and_the_workers_keep_serving(
    start_worker, celery_live, make_emulator, emulator_scope
) -> None:
    emulator = make_emulator(clusters=250)  # five subscriptions, one batch (and clusters page) each
    scope = emulator_scope(emulator)
    env = worker_env(emulator, ARC_SCAN_BATCH_SUBSCRIPTIONS="1")
    worker = start_worker(extra_env=env, name="damaged-rows")
    good = scan_on_workers(scope, worker)
    assert good.state == Scan.State.SUCCEEDED and good.data_problems == {}, good.error
    assert good.clusters == 250 == Cluster.objects.count()
    facts = {c.key: (c.facts_hash, c.facts_scan_id) for c in Cluster.objects.all()}
    results = results_of(set(facts))
    result_count = ControlResult.objects.count()

    emulator.faults.mangle_rows("arg", how="mixed", query=CLUSTERS_QUERY, count=2)  # two pages of damaged rows
    damaged_scan = scan_on_workers(scope, worker)
    damaged = assert_damage_contained(emulator, damaged_scan, facts, results)
    assert len(mangled_subscriptions(emulator)) == 2
    assert ControlResult.objects.count() == result_count

    clean = scan_on_workers(scope, worker)  # the worker still serves, and well-formed rows clear the problem
    assert clean.state == Scan.State.SUCCEEDED and clean.data_problems == {}, clean.error
    assert clean.clusters == 250 == Cluster.objects.count() and ControlResult.objects.count() == result_count
    assert not Cluster.objects.exclude(data_problems=[]).exists()
    assert {c.key: c.facts_hash for c in Cluster.objects.filter(key__in=damaged)} == {k: facts[k][0] for k in damaged}
    assert ChangeEvent.objects.filter(scan=clean).count() == 0
    assert FleetSnapshot.objects.filter(scan=clean).count() == 1
    assert worker.process.poll() is None
