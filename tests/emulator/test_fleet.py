"""The fleet generator: determinism, ARG row shapes, every case present from 40 clusters on."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from azure_emulator.fleet import Fleet, generate_fleet
from azure_emulator.fleet.catalog import HOSTILE_NAMES, HOSTILE_TEXT, PRODUCT_POLICIES
from posture.catalog.policies import NETWORK_GUARDRAIL_POLICIES, POLICY_DEFINITION_IDS

from .conftest import NOW

COLUMNS = {
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
    "sku",
    "plan",
    "properties",
    "tags",
    "identity",
    "zones",
    "extendedLocation",
}


def rows(fleet: Fleet, table: str, type_: str | None = None) -> list[dict[str, Any]]:
    everything = [r for sub_rows in fleet.tables[table].values() for r in sub_rows]
    return [r for r in everything if type_ is None or r["type"] == type_]


def clusters(fleet: Fleet) -> list[dict[str, Any]]:
    return list(fleet.clusters())


@pytest.fixture(scope="module", params=[0, 1, 2, 99])
def small(request: pytest.FixtureRequest) -> Fleet:
    return generate_fleet(40, request.param, now=NOW)


def test_the_same_seed_gives_the_same_fleet_and_another_seed_another() -> None:
    first, again, other = (generate_fleet(120, seed, now=NOW) for seed in (5, 5, 6))
    dump = lambda f: json.dumps([f.tables, f.provisioned_cluster_instances], sort_keys=True)  # noqa: E731
    assert dump(first) == dump(again)
    assert first.tenant_id == again.tenant_id != other.tenant_id
    assert dump(first) != dump(other)


def test_it_spreads_about_fifty_clusters_per_subscription_under_nested_groups() -> None:
    fleet = generate_fleet(1000, 3, now=NOW)
    per_sub = Counter(c["subscriptionId"] for c in clusters(fleet))
    assert len(fleet.subscriptions) == 20 and set(per_sub.values()) == {50}
    assert len(generate_fleet(40, 3, now=NOW).subscriptions) == 2
    root = fleet.management_groups[fleet.tenant_id]
    assert root.parent is None
    assert sorted(fleet.subscriptions_under(root.name)) == sorted(fleet.subscriptions)
    for sub in fleet.subscriptions.values():
        group = fleet.management_groups[sub.management_group]
        assert group.parent is not None  # every subscription sits below the root group


def test_rows_have_arg_shape(small: Fleet) -> None:
    for table in small.tables:
        for row in rows(small, table):
            assert set(row) <= COLUMNS
            assert row["type"] == row["type"].lower()
            assert row.get("resourceGroup", "") == row.get("resourceGroup", "").lower()
            assert " " not in (row.get("location") or "") and (row.get("location") or "") == (row.get("location") or "").lower()
    cluster = clusters(small)[0]
    assert "/providers/Microsoft.Kubernetes/connectedClusters/" in cluster["id"]  # ARM casing kept
    assert cluster["subscriptionId"] in small.subscriptions


def test_every_cluster_case_appears_in_40_clusters(small: Fleet) -> None:
    all_clusters = clusters(small)
    props = [c["properties"] for c in all_clusters]
    aks = [c for c in all_clusters if c.get("kind") == "ProvisionedCluster"]
    assert all(c["properties"]["distribution"].lower() == "aks" and c["properties"]["infrastructure"] == "azure_stack_hci" for c in aks)
    distributions = {p["distribution"].lower() for p in props}
    assert {"aks", "k3s", "openshift", "eks", "gke", "generic"} <= distributions
    assert {"rancher_rke", "rke2"} & distributions
    others = [c for c in all_clusters if c.get("kind") != "ProvisionedCluster"]
    assert any("kind" not in c for c in others) and any("kind" in c and c["kind"] is None for c in others)
    statuses = Counter(p.get("connectivityStatus", "<missing>") for p in props)
    assert set(statuses) == {"Connecting", "Connected", "Offline", "Expired", "AgentNotInstalled", "<missing>"}
    for p in props:
        seen = p.get("lastConnectivityTime")
        status = p.get("connectivityStatus")
        if status == "AgentNotInstalled":
            assert seen is None and "agentVersion" not in p
            continue
        age = NOW - _parse(seen)
        if status == "Connected":
            assert timedelta(0) < age < timedelta(hours=1)
        elif status == "Offline":
            assert timedelta(hours=2) <= age <= timedelta(days=30)
        elif status == "Expired":
            assert age > timedelta(days=90)
    gateways = [p.get("gateway", "<missing>") for p in props]
    assert "<missing>" in gateways and None in gateways and {"enabled": False} in gateways and {"enabled": True} in gateways
    assert any(isinstance(g, dict) and g.get("resourceId") for g in gateways)
    assert any(p.get("privateLinkState") == "Enabled" and isinstance(p.get("gateway"), dict) and p["gateway"].get("enabled") for p in props)
    assert {p.get("privateLinkState", "<missing>") for p in props} == {"Enabled", "Disabled", "<missing>"}
    assert any(p.get("privateLinkState") == "Enabled" and p.get("privateLinkScopeResourceId") == "" for p in props)
    for key, values in (("securityProfile", {True, False}), ("oidcIssuerProfile", {True, False})):
        assert any(key not in p for p in props)
        inner = [p[key].get("workloadIdentity", p[key]).get("enabled") for p in props if key in p]
        assert set(inner) == values
    assert {p["aadProfile"]["enableAzureRBAC"] for p in props if "aadProfile" in p} == {True, False}
    agents = [p["arcAgentProfile"] for p in props if "arcAgentProfile" in p]
    assert any(a["agentErrors"] for a in agents) and {a["agentAutoUpgrade"] for a in agents} == {"Enabled", "Disabled"}
    assert {p["provisioningState"] for p in props} >= {"Succeeded", "Failed", "Updating", "Deleting"}
    assert any(c.get("tags") == {} for c in all_clusters) and any("identity" not in c for c in all_clusters)


def test_private_link_and_gateway_references_resolve_like_azure(small: Fleet) -> None:
    resources = rows(small, "resources")
    ids = {r["id"].lower() for r in resources}
    scopes = {r["id"].lower(): r for r in resources if r["type"] == "microsoft.hybridcompute/privatelinkscopes"}
    gateways = {r["id"].lower(): r for r in resources if r["type"] == "microsoft.hybridcompute/gateways"}
    references = [c for c in clusters(small) if c["properties"].get("privateLinkScopeResourceId")]
    resolved = [c for c in references if c["properties"]["privateLinkScopeResourceId"].lower() in scopes]
    dangling = [c for c in references if c["properties"]["privateLinkScopeResourceId"].lower() not in ids]
    assert resolved and dangling
    for cluster in resolved:
        reference = cluster["properties"]["privateLinkScopeResourceId"]
        scope = scopes[reference.lower()]
        assert "Microsoft.HybridCompute/privateLinkScopes" in reference  # the casing quirk
        assert "microsoft.hybridcompute/privateLinkScopes" in scope["id"]
    assert any(scopes[c["properties"]["privateLinkScopeResourceId"].lower()]["location"] != c["location"] for c in resolved)
    for cluster in clusters(small):
        gateway_id = (cluster["properties"].get("gateway") or {}).get("resourceId")
        if gateway_id:
            assert gateway_id.lower() in gateways


def test_network_resources_cover_every_case(small: Fleet) -> None:
    resources = rows(small, "resources")
    of = lambda t: [r for r in resources if r["type"] == t]  # noqa: E731
    scopes, legacy = of("microsoft.hybridcompute/privatelinkscopes"), of("microsoft.kubernetesconfiguration/privatelinkscopes")
    assert scopes and legacy
    assert {s["properties"]["publicNetworkAccess"] for s in scopes} == {"Enabled", "Disabled"}
    statuses = {
        c["properties"]["privateLinkServiceConnectionState"]["status"]
        for s in scopes
        for c in s["properties"]["privateEndpointConnections"]
    }
    assert statuses == {"Approved", "Pending", "Rejected", "Disconnected"}
    assert any(not s["properties"]["privateEndpointConnections"] for s in scopes)
    endpoints = {e["id"].lower(): e for e in of("microsoft.network/privateendpoints")}
    groups = {
        g
        for e in endpoints.values()
        for link in e["properties"]["privateLinkServiceConnections"] + e["properties"]["manualPrivateLinkServiceConnections"]
        for g in link["properties"]["groupIds"]
    }
    assert groups == {"hybridcompute", "vault"}
    cross_sub = moved = False
    for scope in scopes:
        for connection in scope["properties"]["privateEndpointConnections"]:
            endpoint = endpoints[connection["properties"]["privateEndpoint"]["id"].lower()]
            cross_sub |= endpoint["subscriptionId"] != scope["subscriptionId"]
            moved |= endpoint["location"] != scope["location"]
    assert cross_sub and moved
    per_sub = Counter(g["subscriptionId"] for g in of("microsoft.hybridcompute/gateways"))
    assert max(per_sub.values()) <= 5
    assert {g["properties"]["provisioningState"] for g in of("microsoft.hybridcompute/gateways")} >= {"Succeeded", "Failed", "Creating"}
    networks = of("microsoft.azurestackhci/logicalnetworks")
    assert any(n["properties"] == {"provisioningState": "Succeeded"} for n in networks)
    subnets = [s for n in networks for s in n["properties"].get("subnets", [])]
    assert all({"addressPrefix", "vlan", "ipPools"} <= set(s["properties"]) for s in subnets)
    assert any("/networkInterfaces/" in ref["ID"] for s in subnets for ref in s["properties"]["ipConfigurationReferences"])
    vaults = [v["properties"] for v in of("microsoft.keyvault/vaults")]
    assert {v.get("publicNetworkAccess", "<missing>") for v in vaults} == {"Enabled", "Disabled", "<missing>"}
    assert {v["networkAcls"]["defaultAction"] for v in vaults if "networkAcls" in v} == {"Allow", "Deny"}
    assert any(v["privateEndpointConnections"] for v in vaults)


def test_extensions_cover_types_casings_and_states(small: Fleet) -> None:
    extensions = rows(small, "kubernetesconfigurationresources")
    props = [e["properties"] for e in extensions]
    types = [p.get("ExtensionType") or p.get("extensionType") for p in props]
    assert {t.lower() for t in types} == {
        "microsoft.policyinsights",
        "microsoft.azuredefender.kubernetes",
        "microsoft.azurekeyvaultsecretsprovider",
        "microsoft.azure.secretstore",
        "microsoft.flux",
        "microsoft.azuremonitor.containers",
    }
    assert len(set(types)) > len({t.lower() for t in types})  # mixed casing of the same type
    assert any("ExtensionType" in p for p in props) and any("extensionType" in p for p in props)
    pascal = [p for p in props if "ExtensionType" in p]
    assert all({"Version", "Scope"} <= set(p) for p in pascal)
    assert all("ReleaseNamespace" in p["Scope"]["cluster"] for p in pascal)
    states = {p.get("ProvisioningState", p.get("provisioningState", "<missing>")) for p in props}
    assert states == {"Succeeded", "Failed", "Creating", "Updating", "Deleting", "Canceled", "<missing>"}
    assert any("/Microsoft.ContainerService/managedClusters/" in e["id"] for e in extensions)
    for extension in extensions:
        assert "/providers/Microsoft.KubernetesConfiguration/extensions/" in extension["id"]


def test_the_generator_knows_exactly_the_policy_definitions_the_product_reads() -> None:
    assert sorted(PRODUCT_POLICIES) == sorted(POLICY_DEFINITION_IDS)


def test_policy_states_apply_the_product_definitions_to_the_right_resources(small: Fleet) -> None:
    states = rows(small, "policyresources")
    by_definition: dict[str, set[str]] = {}
    for state in states:
        p = state["properties"]
        definition = p["policyDefinitionName"].lower()
        assert p["policyDefinitionId"] == f"/providers/Microsoft.Authorization/policyDefinitions/{definition}"
        assert p["resourceId"] in state["id"] and p["policyAssignmentId"]
        by_definition.setdefault(p["policyDefinitionName"].lower(), set()).add(p["resourceType"])
    assert set(POLICY_DEFINITION_IDS) <= set(by_definition)
    assert set(by_definition) - set(POLICY_DEFINITION_IDS)  # unrelated definitions too
    assert by_definition["898f2439-3333-4713-af25-f1d78bc50556"] == {"Microsoft.HybridCompute/privateLinkScopes"}
    assert by_definition["405c5871-3e91-4644-8a63-58e19d68ff5b"] == {"Microsoft.KeyVault/vaults"}
    assert by_definition["6b2122c1-8120-4ff5-801b-17625a355590"] == {"Microsoft.Kubernetes/connectedClusters"}
    with_policy = {
        e["id"].lower().split("/providers/microsoft.kubernetesconfiguration/")[0]
        for e in rows(small, "kubernetesconfigurationresources")
        if (e["properties"].get("ExtensionType") or e["properties"].get("extensionType")).lower() == "microsoft.policyinsights"
    }
    for state in states:
        if state["properties"]["policyDefinitionName"].lower() in NETWORK_GUARDRAIL_POLICIES:
            assert state["properties"]["resourceId"].lower() in with_policy
    compliance = {s["properties"]["complianceState"] for s in states}
    assert {"Compliant", "NonCompliant", "Conflict", "Exempt"} < compliance
    assert compliance - {"Compliant", "NonCompliant", "Conflict", "Exempt"}  # unknown values
    assert any(s["properties"]["policyDefinitionName"] != s["properties"]["policyDefinitionName"].lower() for s in states)


def test_assessments_and_containers_have_arg_shapes(small: Fleet) -> None:
    assessments = rows(small, "securityresources")
    assert {a["properties"]["status"]["code"] for a in assessments} == {"Healthy", "Unhealthy", "NotApplicable"}
    details = [a["properties"]["resourceDetails"] for a in assessments]
    assert any("Id" in d and "Source" in d for d in details) and any("id" in d for d in details)
    assert any("/connectedClusters/" not in a["id"] for a in assessments)
    assert all(a["properties"]["metadata"]["severity"] in ("High", "Medium", "Low") for a in assessments)
    subscription_rows = rows(small, "resourcecontainers", "microsoft.resources/subscriptions")
    assert len(subscription_rows) == len(small.subscriptions)
    for row in subscription_rows:
        chain = row["properties"]["managementGroupAncestorsChain"]
        assert row["properties"]["state"] and chain[-1]["name"] == small.tenant_id
    assert len(rows(small, "resourcecontainers", "microsoft.management/managementgroups")) == len(small.management_groups)


def test_provisioned_cluster_instances_cover_network_variants(small: Fleet) -> None:
    instances = [i["properties"] for i in small.provisioned_cluster_instances.values()]
    policies = {(i.get("networkProfile") or {}).get("networkPolicy", "<missing>") for i in instances}
    assert policies == {"calico", "flannel", "cilium", "<missing>"}
    ranges = {(i.get("clusterVMAccessProfile") or {}).get("authorizedIPRanges", "<missing>") for i in instances}
    assert "0.0.0.0/0" in ranges and "<missing>" in ranges and any("," in r for r in ranges)
    assert all(i["controlPlane"]["controlPlaneEndpoint"]["hostIP"] for i in instances)
    assert len({i["provisioningState"] for i in instances}) >= 3
    aks_ids = {c["id"].lower() for c in clusters(small) if c.get("kind") == "ProvisionedCluster"}
    assert set(small.provisioned_cluster_instances) == aks_ids


def test_hostile_strings_are_in_tags_and_in_names_of_customer_clusters_only(small: Fleet) -> None:
    all_clusters = clusters(small)
    keys = {k for c in all_clusters for k in (c.get("tags") or {})}
    values = {v for c in all_clusters for v in (c.get("tags") or {}).values()}
    assert set(HOSTILE_TEXT) <= keys and set(HOSTILE_TEXT) <= values
    names = {c["name"]: c for c in all_clusters}
    assert set(HOSTILE_NAMES) <= set(names)
    assert any(len(name) > 250 for name in names)
    for name in HOSTILE_NAMES:
        assert names[name].get("kind") != "ProvisionedCluster"
        assert not set(name) & set("/?#%")


def test_cluster_mutations_keep_the_tables_consistent() -> None:
    fleet = generate_fleet(60, 4, now=NOW)
    aks = next(c for c in fleet.clusters() if c.get("kind") == "ProvisionedCluster")
    counts = {t: fleet.row_count(t) for t in fleet.tables}
    version = fleet.version
    updated = fleet.update_cluster(
        aks["id"].upper(), {"properties": {"gateway": None, "agentVersion": "9.9.9"}, "tags": {"patched": "yes"}}
    )
    assert "gateway" not in updated["properties"] and updated["properties"]["agentVersion"] == "9.9.9"
    assert updated["tags"]["patched"] == "yes" and updated["id"] == aks["id"]
    assert fleet.cluster(aks["id"]) == updated and aks["properties"].get("agentVersion") != "9.9.9"  # copy-on-write
    fleet.remove_cluster(aks["id"])
    assert fleet.cluster(aks["id"]) is None and aks["id"].lower() not in fleet.provisioned_cluster_instances
    assert all(aks["id"].lower() not in r["id"].lower() for t in fleet.tables for r in rows(fleet, t))
    assert fleet.row_count("policyresources") < counts["policyresources"]
    fleet.restore_cluster(aks["id"])
    assert {t: fleet.row_count(t) for t in fleet.tables} == counts
    assert aks["id"].lower() in fleet.provisioned_cluster_instances
    assert fleet.version == version + 3
    with pytest.raises(KeyError):
        fleet.update_cluster(aks["id"] + "-nope", {})


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=NOW.tzinfo)


def test_no_two_rows_of_a_table_share_an_id() -> None:
    # Real ARG never returns one id twice; the product keys its records by id.
    fleet = generate_fleet(3000, 0)
    for table, by_subscription in fleet.tables.items():
        ids = Counter(row["id"].lower() for rows in by_subscription.values() for row in rows)
        assert [i for i, n in ids.items() if n > 1] == [], table
