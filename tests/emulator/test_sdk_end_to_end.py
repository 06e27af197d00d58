"""The real SDKs against the emulator: every product query, paged with skip tokens."""

from __future__ import annotations

from typing import Any

import pytest
from azure.identity import ClientSecretCredential
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, ResultFormat

from azure_emulator import Emulator
from posture.catalog.policies import POLICY_DEFINITION_IDS
from posture.collect import queries

from .helpers import subscriptions

PAGE = 37


def fleet_rows(emu: Emulator, table: str, subs: list[str]) -> list[dict[str, Any]]:
    return emu.fleet.rows(table, subs, tenant_rows=False)


def _connected_cluster_child(row: dict[str, Any]) -> bool:
    return "/microsoft.kubernetes/connectedclusters/" in row["id"].lower()


# Python restatements of each product query's filter, independent of the KQL evaluator.
EXPECTED_FILTERS = {
    "clusters": lambda r: r["type"].lower() == queries.CONNECTED_CLUSTER,
    "extensions": lambda r: r["type"].lower() == queries.EXTENSION and _connected_cluster_child(r),
    "policy_states": lambda r: (
        r["type"].lower() == "microsoft.policyinsights/policystates"
        and str(r["properties"].get("policyDefinitionName", "")).lower() in POLICY_DEFINITION_IDS
    ),
    "assessments": lambda r: r["type"].lower() == "microsoft.security/assessments" and _connected_cluster_child(r),
    "network_resources": lambda r: r["type"].lower() in queries.NETWORK_RESOURCE_TYPES,
    "subscriptions": lambda r: r["type"].lower() == "microsoft.resources/subscriptions",
}


def page_through(graph: ResourceGraphClient, query: queries.Query, subs: list[str]) -> tuple[list[Any], int]:
    rows: list[Any] = []
    skip_token, pages = None, 0
    while True:
        page = graph.resources(
            QueryRequest(
                subscriptions=subs,
                query=query.text,
                options=QueryRequestOptions(
                    top=PAGE, skip_token=skip_token, result_format=ResultFormat.OBJECT_ARRAY, allow_partial_scopes=False
                ),
            )
        )
        assert page.result_truncated == "false"
        assert page.count == len(page.data) <= PAGE
        rows += page.data
        pages += 1
        skip_token = page.skip_token
        if not skip_token:
            return rows, pages


@pytest.mark.parametrize("query", queries.ALL_QUERIES, ids=lambda q: q.name)
def test_every_product_query_pages_to_the_rows_the_fleet_holds(emu: Emulator, graph: ResourceGraphClient, query: queries.Query) -> None:
    subs = subscriptions(emu)
    rows, pages = page_through(graph, query, subs)
    expected = [r for r in fleet_rows(emu, query.table, subs) if EXPECTED_FILTERS[query.name](r)]
    assert len(expected) > 0
    assert [r["id"] for r in rows] == [r["id"] for r in expected]  # stable lower-case id order
    assert pages == -(-len(expected) // PAGE)
    sent = [r["body"] for r in emu.requests("arg")]
    assert all(body["query"] == query.text and body["subscriptions"] == subs for body in sent)
    assert "$skipToken" not in sent[0]["options"] and all("$skipToken" in b["options"] for b in sent[1:])


def test_the_clusters_query_projects_exactly_what_kusto_would(emu: Emulator, graph: ResourceGraphClient) -> None:
    rows, _ = page_through(graph, queries.CLUSTERS, subscriptions(emu))
    by_id = {c["id"]: c for c in emu.fleet.clusters()}

    def text(value: Any) -> str:
        return "" if value is None else ("true" if value is True else "false" if value is False else str(value))

    for row in rows:
        cluster = by_id[row["id"]]
        props = cluster["properties"]
        gateway = props.get("gateway") or {}
        assert row["kind"] == cluster.get("kind")
        assert row["tags"] == cluster.get("tags")
        assert row["connectivityStatus"] == text(props.get("connectivityStatus"))
        assert row["privateLinkScopeResourceId"] == text(props.get("privateLinkScopeResourceId"))
        assert row["gatewayEnabled"] == gateway.get("enabled")
        assert row["gatewayResourceId"] == text(gateway.get("resourceId"))
        assert row["workloadIdentityEnabled"] == (props.get("securityProfile") or {}).get("workloadIdentity", {}).get("enabled")
        assert row["agentAutoUpgrade"] == text((props.get("arcAgentProfile") or {}).get("agentAutoUpgrade"))
    assert {r["connectivityStatus"] for r in rows} >= {"Connected", "Offline", "Expired", "AgentNotInstalled", ""}


def test_the_extensions_query_reads_both_property_casings(emu: Emulator, graph: ResourceGraphClient) -> None:
    rows, _ = page_through(graph, queries.EXTENSIONS, subscriptions(emu))
    by_id = {r["id"]: r for r in fleet_rows(emu, "kubernetesconfigurationresources", subscriptions(emu))}
    for row in rows:
        props = by_id[row["id"]]["properties"]
        raw_type = props.get("ExtensionType") or props.get("extensionType")
        assert row["extensionType"] == raw_type.lower()
        assert row["provisioningState"] == (props.get("ProvisioningState") or props.get("provisioningState") or "")
    assert any("extensionType" in by_id[r["id"]]["properties"] for r in rows)  # camelCase rows are read too


def test_the_sdk_default_api_version_and_table_format_work(emu: Emulator, credential: ClientSecretCredential) -> None:
    default = ResourceGraphClient(credential, base_url=emu.base_url, connection_verify=emu.ca_file)
    page = default.resources(
        QueryRequest(
            subscriptions=subscriptions(emu),
            query=queries.SUBSCRIPTIONS.text,
            options=QueryRequestOptions(result_format=ResultFormat.TABLE),
        )
    )
    assert emu.requests("arg")[-1]["query"]["api-version"] == "2021-03-01"
    assert [c["name"] for c in page.data["columns"]] == ["id", "subscriptionId", "name", "state"]
    assert len(page.data["rows"]) == 3
