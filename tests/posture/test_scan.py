"""Scans through the real Azure SDKs against the HTTPS emulator (tasks run in-process here)."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import pytest

from posture.models import AzureResource, Cluster, QueryEvidence, Scan, ScanBatch, Subscription
from posture.scans.request import scan_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    settings.ARC_AZURE_BACKOFF_BASE_SECONDS = 0.02
    settings.ARC_AZURE_BACKOFF_CAP_SECONDS = 0.2


# Aims a fault at the clusters query only (others mention connected clusters in a filter).
CLUSTERS_QUERY = "type =~ 'microsoft.kubernetes/connectedclusters'"
# The documented body of a 400 for bad KQL (azure.md §9.4).
INVALID_QUERY = {
    "error": {
        "code": "BadRequest",
        "message": "Please provide below info when asking for support: timestamp = 2026-11-26T10:00:00Z, correlationId = 0000.",
        "details": [
            {
                "code": "InvalidQuery",
                "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying.",
            },
            {
                "code": "ParserFailure",
                "message": "ParserFailure",
                "line": 1,
                "characterPositionInLine": 11,
                "token": "<EOF>",
                "expectedToken": "Ǐ",
            },
        ],
    }
}


def run_scan(scope: Any) -> Scan:
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    assert created
    scan.refresh_from_db()
    return scan


def fleet_keys(emulator: Any, subscriptions: set[str] | None = None) -> set[str]:
    return {r["id"].lower() for r in emulator.fleet.clusters() if subscriptions is None or r["subscriptionId"].lower() in subscriptions}


def arg_bodies(emulator: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in emulator.requests("arg")]


def test_a_scan_stores_every_cluster_with_evidence(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=150)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert set(Cluster.objects.values_list("key", flat=True)) == fleet_keys(emulator)
    assert scan.clusters == 150 and scan.subscriptions == len(emulator.fleet.subscriptions)
    assert Subscription.objects.count() == len(emulator.fleet.subscriptions)
    assert AzureResource.objects.filter(type="microsoft.hybridcompute/privatelinkscopes").exists()
    aks = Cluster.objects.filter(kind__iexact="ProvisionedCluster")
    assert aks.exists() and all(c.facts["provisioned_instance"]["found"] for c in aks)
    # Evidence: the exact bodies Azure sent, hashed; a query runs as one stream per subscription slice.
    slices = list(QueryEvidence.objects.filter(batch__scan=scan, name="clusters"))
    assert sorted(sub for e in slices for sub in e.scopes["subscriptions"]) == sorted(emulator.fleet.subscriptions)
    for evidence in slices:
        raw = gzip.decompress(bytes(evidence.raw))
        assert hashlib.sha256(raw).hexdigest() == evidence.sha256
        page = json.loads(raw.splitlines()[0])
        assert page["totalRecords"] == evidence.rows and page["resultTruncated"] == "false"
        assert evidence.api_version == "2022-10-01" and "connectedclusters" in evidence.request
    assert sum(e.rows for e in slices) == 150
    assert {e.name for e in QueryEvidence.objects.filter(batch__scan=scan)} == {
        "clusters",
        "network_resources",
        "extensions",
        "policy_states",
        "assessments",
        "provisioned_cluster_instances",
    }
    # Every request the product sent names a subscription batch and asks for 1000 rows a page.
    assert all(body["options"]["$top"] == 1000 and body["options"]["resultFormat"] == "objectArray" for body in arg_bodies(emulator))


@pytest.mark.slow
def test_it_pages_through_results_larger_than_a_page(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_QUERY_PARTS = 1  # one stream per query: 2100 clusters take three pages
    emulator = make_emulator(clusters=2100)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    evidence = QueryEvidence.objects.get(batch__scan=scan, name="clusters")
    assert (evidence.requests, evidence.rows) == (3, 2100)
    assert sum(1 for body in arg_bodies(emulator) if "$skipToken" in body.get("options", {})) >= 2 * 2
    assert Cluster.objects.count() == 2100


def test_more_than_1000_subscriptions_are_split_into_batches(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1000
    emulator = make_emulator(clusters=100)
    empty = emulator.fleet.add_empty_subscriptions(1150)
    scope = emulator_scope(emulator, subscriptions=[*emulator.fleet.subscriptions][:2] + empty)
    scan = run_scan(scope)
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    batches = [list(b.subscriptions) for b in ScanBatch.objects.filter(scan=scan).order_by("number")]
    assert scan.subscriptions == 1152 and scan.batches_total == len(batches) > 1
    assert sorted(sub for batch in batches for sub in batch) == sorted(s.lower() for s in scope.subscriptions)
    sizes = [len(body.get("subscriptions") or []) for body in arg_bodies(emulator)]
    assert max(sizes) <= 1000 and min(sizes) > 0
    assert Cluster.objects.count() == 100


def test_a_management_group_scope_scans_only_its_subscriptions(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=200)
    group = next(
        name
        for name, mg in emulator.fleet.management_groups.items()
        if mg.parent and 0 < len(emulator.fleet.subscriptions_under(name)) < len(emulator.fleet.subscriptions)
    )
    under = set(emulator.fleet.subscriptions_under(group))
    scan = run_scan(emulator_scope(emulator, management_groups=[group]))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert set(Cluster.objects.values_list("key", flat=True)) == fleet_keys(emulator, under)


def test_a_tenant_scope_scans_every_readable_subscription(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=120)
    scan = run_scan(emulator_scope(emulator))
    assert "managementGroups" not in arg_bodies(emulator)[0] or not arg_bodies(emulator)[0]["managementGroups"]
    assert set(Cluster.objects.values_list("key", flat=True)) == fleet_keys(emulator) and scan.is_complete


def test_a_429_storm_is_waited_out(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=80)
    emulator.faults.add("arg", 429, count=6)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert scan.throttled >= 6
    assert Cluster.objects.count() == 80


@pytest.mark.parametrize("fault", ["503", "500", "drop", "malformed", "slow"])
def test_transient_failures_are_retried(make_emulator, emulator_scope, settings, fault) -> None:
    settings.ARC_HTTP_READ_TIMEOUT = 0.5
    emulator = make_emulator(clusters=60)
    if fault in ("503", "500"):
        emulator.faults.add("arg", int(fault), count=2)
    elif fault == "drop":
        emulator.faults.drop_connection("arg", count=2)
    elif fault == "malformed":
        emulator.faults.malformed_json("arg", count=2)
    else:
        emulator.faults.slow("arg", seconds=1.5, count=1)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert Cluster.objects.count() == 60


def test_transient_arm_failures_are_retried(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    emulator.faults.add("arm", 503, count=2)
    emulator.faults.add("arm", 429, retry_after=0.1, count=2)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert all(c.facts["provisioned_instance"]["found"] for c in Cluster.objects.filter(kind__iexact="ProvisionedCluster"))


def test_a_token_rejected_mid_scan_is_renewed_once(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    emulator.faults.add("arg", 401, count=1)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert emulator.stats()["tokens_issued"] >= 2


def test_a_token_rejected_on_parallel_streams_is_renewed_for_all_of_them(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    # The batch's query streams start together, so all of them meet the rejected token.
    for table in ("kubernetesconfigurationresources", "policyresources", "securityresources", CLUSTERS_QUERY):
        emulator.faults.add("arg", 401, count=1, query=table)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    batch = ScanBatch.objects.get(scan=scan)
    assert (batch.attempts, batch.error) == (1, "")  # renewed in place, not failed and retried
    assert sum(1 for r in emulator.requests("arg") if r["status"] == 401) == 4


def test_tokens_expiring_during_a_scan_are_refreshed(make_emulator, emulator_scope) -> None:
    # Requests are slowed past the token lifetime, so the scan outlives several tokens.
    emulator = make_emulator(clusters=60, token_lifetime=2)
    emulator.faults.slow("arg", seconds=1.5, count=3)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert emulator.stats()["tokens_issued"] >= 2
    assert all(r["status"] == 200 for r in emulator.requests("arg"))


def test_a_wrong_secret_fails_the_scan_with_the_entra_error(make_emulator, emulator_scope, monkeypatch) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    scan = run_scan(scope)
    assert scan.state == Scan.State.FAILED
    assert "Entra ID did not issue a token" in scan.error and "AADSTS7000215" in scan.error
    assert "not-the-secret" not in scan.error
    assert not Cluster.objects.exists()


def test_a_forbidden_subscription_is_isolated_and_the_rest_is_scanned(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=150)  # three subscriptions, one batch
    subscriptions = sorted(emulator.fleet.subscriptions)
    forbidden = subscriptions[1]
    emulator.faults.forbid_subscriptions([forbidden])
    scan = run_scan(emulator_scope(emulator, subscriptions=subscriptions))
    assert scan.state == Scan.State.PARTIAL
    failed = ScanBatch.objects.get(scan=scan, state=ScanBatch.State.FAILED)
    assert failed.subscriptions == [forbidden]
    assert f"lacks Reader on subscription {forbidden}" in failed.error and forbidden in scan.error
    assert set(Cluster.objects.values_list("key", flat=True)) == fleet_keys(emulator, set(subscriptions) - {forbidden})


def test_a_rejected_query_fails_with_the_service_message(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=20)
    emulator.faults.add("arg", 400, body=INVALID_QUERY, query=CLUSTERS_QUERY)
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.FAILED
    assert "Resource Graph rejected query 'clusters': BadRequest" in scan.error
    assert "InvalidQuery: Query is invalid" in scan.error


def test_a_failing_batch_leaves_the_last_good_data_intact(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1
    emulator = make_emulator(clusters=150)
    scope = emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions))
    first = run_scan(scope)
    assert first.state == Scan.State.SUCCEEDED
    before = {c.key: (c.facts_hash, c.facts_scan_id) for c in Cluster.objects.all()}
    broken = sorted(emulator.fleet.subscriptions)[0]
    emulator.faults.forbid_subscriptions([broken])
    second = run_scan(scope)
    assert second.state == Scan.State.PARTIAL
    for cluster in Cluster.objects.all():
        assert cluster.removed_at is None
        assert (cluster.facts_hash, cluster.facts_scan_id) == before[cluster.key]
        expected_seen = first.pk if cluster.subscription_id == broken else second.pk
        assert cluster.last_seen_scan_id == expected_seen


def test_clusters_gone_from_azure_are_removed_only_after_a_complete_scan(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=60)
    scope = emulator_scope(emulator)
    run_scan(scope)
    victim = next(iter(emulator.fleet.clusters()))["id"]
    emulator.fleet.remove_cluster(victim)
    emulator.faults.add("arg", 400, body=INVALID_QUERY, query=CLUSTERS_QUERY)  # this scan fails: nothing may be removed
    assert run_scan(scope).state == Scan.State.FAILED
    assert not Cluster.objects.filter(removed_at__isnull=False).exists()
    scan = run_scan(scope)
    assert scan.state == Scan.State.SUCCEEDED and scan.clusters_removed == 1
    assert Cluster.objects.get(key=victim.lower()).removed_at is not None
    emulator.fleet.restore_cluster(victim)
    run_scan(scope)
    assert Cluster.objects.get(key=victim.lower()).removed_at is None


def test_a_subscription_that_vanishes_from_the_listing_keeps_its_clusters(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=150)
    scope = emulator_scope(emulator)  # whole tenant: subscriptions come from the listing
    run_scan(scope)
    lost = sorted(emulator.fleet.subscriptions)[0]
    emulator.faults.forbid_subscriptions([lost])  # access lost: no longer listed
    scan = run_scan(scope)
    assert scan.state == Scan.State.SUCCEEDED and scan.clusters_removed == 0
    assert not Cluster.objects.filter(removed_at__isnull=False).exists()
    assert lost in scan.warnings[0] and "keep their last data" in scan.warnings[0]


@pytest.mark.parametrize("failure", ["server_error", "missing_expires_in"])
def test_a_failing_token_endpoint_is_retried(make_emulator, emulator_scope, failure) -> None:
    emulator = make_emulator(clusters=40)
    emulator.faults.token_failure(failure, count=3)
    scan = run_scan(emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions)))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert Cluster.objects.count() == 40
