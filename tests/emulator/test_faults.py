"""Every fault kind, each applying to its next matching request(s) only."""

from __future__ import annotations

import json

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, DecodeError, HttpResponseError
from azure.identity import ClientSecretCredential
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, ResultFormat

from azure_emulator import Emulator

from .helpers import MANAGEMENT_SCOPE, fetch_token, query, subscriptions

CLUSTERS = (
    "resources | where type =~ 'microsoft.kubernetes/connectedclusters' "
    "| project id, name, connectivityStatus = tostring(properties.connectivityStatus), "
    "gatewayEnabled = tobool(properties.gateway.enabled)"
)
SIMPLE = QueryRequest(query="resourcecontainers | take 1")


def test_an_injected_429_without_retry_after_fails_the_sdk_once_then_service_resumes(emu: Emulator, graph: ResourceGraphClient) -> None:
    emu.faults.add("arg", 429)
    with pytest.raises(HttpResponseError) as caught:
        graph.resources(SIMPLE)
    assert caught.value.status_code == 429
    assert caught.value.error is not None and caught.value.error.code == "RateLimiting"
    assert caught.value.response is not None and "x-ms-user-quota-resets-after" in caught.value.response.headers
    assert graph.resources(SIMPLE).count == 1
    assert [r["fault"] for r in emu.requests("arg")] == ["respond", None]


def test_an_injected_429_with_retry_after_is_retried_by_the_sdk(emu: Emulator, graph: ResourceGraphClient) -> None:
    emu.faults.add("arg", 429, retry_after=0.2, count=2)
    assert graph.resources(SIMPLE).count == 1
    assert [r["status"] for r in emu.requests("arg")] == [429, 429, 200]
    assert emu.requests("arg")[0]["response_headers"]["Retry-After"] == "0.2"


@pytest.mark.parametrize(
    ("status", "code", "retried"), [(500, "InternalServerError", True), (503, "ServiceUnavailable", True), (502, "BadGateway", False)]
)
def test_injected_server_errors_follow_the_sdk_retry_rules_for_post(
    emu: Emulator, graph: ResourceGraphClient, status: int, code: str, retried: bool
) -> None:
    emu.faults.add("arg", status)
    if retried:
        assert graph.resources(SIMPLE).count == 1
    else:
        with pytest.raises(HttpResponseError) as caught:
            graph.resources(SIMPLE)
        assert caught.value.status_code == status
    first = emu.requests("arg")[0]
    assert (first["status"], first["response"]["error"]["code"]) == (status, code)


def test_an_explicit_fault_body_and_headers_are_sent_verbatim(http: requests.Session, emu: Emulator, token: str) -> None:
    emu.faults.add("arg", 409, headers={"x-test": "1"}, body={"error": {"code": "Custom", "message": "m"}})
    response = query(http, emu, token, {"query": "resources"})
    assert (response.status_code, response.headers["x-test"]) == (409, "1")
    assert response.json() == {"error": {"code": "Custom", "message": "m"}}


def test_a_slow_response_outlasts_the_client_timeout(http: requests.Session, emu: Emulator, token: str) -> None:
    emu.faults.slow("arg", 1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(
            f"{emu.base_url}/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01",
            json={"query": "resources | take 1"},
            timeout=0.3,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert query(http, emu, token, {"query": "resources | take 1"}).status_code == 200


def test_a_dropped_connection_closes_the_socket_without_a_response(http: requests.Session, emu: Emulator, token: str) -> None:
    emu.faults.drop_connection("arg")
    with pytest.raises(requests.exceptions.ConnectionError):
        query(http, emu, token, {"query": "resources | take 1"})
    assert query(http, emu, token, {"query": "resources | take 1"}).status_code == 200
    assert emu.requests("arg")[0]["status"] is None


def test_malformed_json_is_a_200_the_sdk_cannot_decode(
    http: requests.Session, emu: Emulator, graph: ResourceGraphClient, token: str
) -> None:
    emu.faults.malformed_json("arg", count=2)
    raw = query(http, emu, token, {"query": "resources | take 1"})
    assert raw.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.content)
    with pytest.raises(DecodeError):
        graph.resources(SIMPLE)


@pytest.mark.parametrize(
    ("how", "check"),
    [
        ("drop", lambda row: set(row) == {"id"}),
        ("number", lambda row: row["name"] == 12345 and row["gatewayEnabled"] == 12345),
        ("string_bool", lambda row: row["gatewayEnabled"] == "true" and row["connectivityStatus"] == "true"),
        ("object", lambda row: isinstance(row["name"], dict)),
        ("null", lambda row: row["name"] is None and row["connectivityStatus"] is None),
    ],
)
def test_mangled_rows_lose_columns_or_get_odd_types_but_keep_their_ids(
    http: requests.Session, emu: Emulator, token: str, how: str, check: object
) -> None:
    emu.faults.mangle_rows(how=how)
    body = {"subscriptions": subscriptions(emu), "query": CLUSTERS, "options": {"$top": 5}}
    mangled = query(http, emu, token, body).json()
    clean = query(http, emu, token, body).json()
    assert mangled["count"] == 5 and [r["id"] for r in mangled["data"]] == [r["id"] for r in clean["data"]]
    assert all(check(row) for row in mangled["data"])  # type: ignore[operator]
    assert clean["data"][0]["name"] != 12345 and "name" in clean["data"][0]


def test_mixed_mangling_varies_per_row_and_reaches_the_sdk(emu: Emulator, graph: ResourceGraphClient) -> None:
    emu.faults.mangle_rows(columns=["connectivityStatus"])
    page = graph.resources(
        QueryRequest(
            subscriptions=subscriptions(emu), query=CLUSTERS, options=QueryRequestOptions(top=5, result_format=ResultFormat.OBJECT_ARRAY)
        )
    )
    values = [row.get("connectivityStatus", "<missing>") for row in page.data]
    assert values == ["<missing>", 12345, "true", {"unexpected": {"nested": [1, "two", None]}}, None]
    assert all(isinstance(row["name"], str) for row in page.data)


@pytest.mark.parametrize(
    ("how", "message"),
    [("invalid_client", "AADSTS7000215"), ("missing_expires_in", "expires_in"), ("missing_access_token", "Authentication failed")],
)
def test_token_endpoint_failures_surface_as_client_authentication_errors(
    emu: Emulator, credential: ClientSecretCredential, how: str, message: str
) -> None:
    emu.faults.token_failure(how)
    with pytest.raises(ClientAuthenticationError, match=message):
        credential.get_token(MANAGEMENT_SCOPE)
    assert credential.get_token(MANAGEMENT_SCOPE).token  # the next request is served normally
    assert emu.requests("token")[0]["fault"] == f"token_failure:{how}"


def test_a_token_endpoint_500_is_retried_by_azure_identity(emu: Emulator, credential: ClientSecretCredential) -> None:
    emu.faults.token_failure("server_error")
    assert credential.get_token(MANAGEMENT_SCOPE).token
    first, second = emu.requests("token")
    assert (first["status"], first["response"]["error"]) == (500, "server_error")
    assert first["response"]["error_description"].startswith("AADSTS50000: ")
    assert second["status"] == 200


def test_forbidden_subscriptions_get_403_naming_the_first_forbidden_one(emu: Emulator, graph: ResourceGraphClient) -> None:
    subs = subscriptions(emu)
    emu.faults.forbid_subscriptions([subs[2].upper(), subs[1]])
    with pytest.raises(HttpResponseError) as caught:
        graph.resources(QueryRequest(subscriptions=[subs[0], subs[2], subs[1]], query=CLUSTERS))
    assert caught.value.status_code == 403
    assert caught.value.error is not None and caught.value.error.code == "AuthorizationFailed"
    assert f"'Microsoft.ResourceGraph/resources/read' over scope '/subscriptions/{subs[2]}'" in str(caught.value)
    emu.faults.allow_subscriptions([subs[1], subs[2]])
    assert graph.resources(QueryRequest(subscriptions=subs, query=CLUSTERS)).total_records == 150


def test_a_path_filter_and_count_target_only_matching_requests(http: requests.Session, emu: Emulator, token: str) -> None:
    aks = next(c for c in emu.fleet.clusters() if c.get("kind") == "ProvisionedCluster")
    instance = f"{emu.base_url}{aks['id']}/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default"
    headers = {"Authorization": f"Bearer {token}"}
    emu.faults.add("arm", 503, path="provisionedclusterinstances", count=2)
    assert http.get(f"{emu.base_url}{aks['id']}?api-version=2024-01-01", headers=headers).status_code == 200
    statuses = [http.get(f"{instance}?api-version=2024-01-01", headers=headers).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert emu.faults.pending() == []
    assert emu.stats()["faults_applied"] == 2


@pytest.mark.parametrize(("how", "properties"), [("drop", "<missing>"), ("string_bool", "true"), ("null", None)])
def test_a_mangled_arm_body_loses_its_properties_object_but_keeps_its_id(
    http: requests.Session, emu: Emulator, token: str, how: str, properties: object
) -> None:
    aks = next(c for c in emu.fleet.clusters() if c.get("kind") == "ProvisionedCluster")
    instance = (
        f"{emu.base_url}{aks['id']}/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default?api-version=2024-01-01"
    )
    headers = {"Authorization": f"Bearer {token}"}
    emu.faults.mangle_rows("arm", how=how, path="provisionedclusterinstances")
    mangled, clean = (http.get(instance, headers=headers).json() for _ in range(2))
    assert mangled["id"] == clean["id"] and mangled.get("properties", "<missing>") == properties
    assert isinstance(clean["properties"], dict)


def test_a_query_filter_aims_a_fault_at_one_kql_query(http: requests.Session, emu: Emulator, token: str) -> None:
    emu.faults.add("arg", 503, query="microsoft.kubernetes/connectedclusters")
    other = query(http, emu, token, {"query": "resources | where type =~ 'microsoft.keyvault/vaults' | project id"})
    aimed = query(http, emu, token, {"query": "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | project id"})
    again = query(http, emu, token, {"query": "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | project id"})
    assert (other.status_code, aimed.status_code, again.status_code) == (200, 503, 200)


def test_empty_subscriptions_can_be_added_and_are_readable(tmp_path) -> None:
    with Emulator(clusters=50, seed=3, quota=None, workdir=tmp_path) as own:  # the fleet changes: not the shared one
        added = own.fleet.add_empty_subscriptions(3)
        http = requests.Session()
        http.trust_env = False
        http.verify = own.ca_file
        token = fetch_token(http, own).json()["access_token"]
        response = query(http, own, token, {"subscriptions": added, "query": "resourcecontainers | project id, name"})
    assert response.status_code == 200
    assert sorted(row["id"] for row in response.json()["data"]) == sorted(f"/subscriptions/{s}" for s in added)
