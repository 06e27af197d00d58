"""ARM GETs by id through azure-core's ARM pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, map_error
from azure.core.pipeline.policies import RetryPolicy
from azure.core.rest import HttpRequest, HttpResponse
from azure.identity import ClientSecretCredential
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from azure_emulator import Emulator
from azure_emulator.fleet.catalog import HOSTILE_NAMES

from .helpers import MANAGEMENT_SCOPE

INSTANCE = "/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default"


Get = Callable[..., HttpResponse]


@pytest.fixture
def arm(emu: Emulator, credential: ClientSecretCredential) -> Iterator[Get]:
    """GET {base_url}{id}?api-version=... through azure-mgmt-core's ARM pipeline."""
    policies = [RetryPolicy(retry_backoff_factor=0.01), ARMChallengeAuthenticationPolicy(credential, MANAGEMENT_SCOPE)]
    with ARMPipelineClient(base_url=emu.base_url, policies=policies, connection_verify=emu.ca_file) as client:

        def get(resource_id: str, version: str = "2024-01-01") -> HttpResponse:
            request = HttpRequest("GET", f"{emu.base_url}{quote(resource_id)}", params={"api-version": version})
            return client.send_request(request)

        yield get


def raise_arm_error(response: HttpResponse) -> None:
    map_error(response.status_code, response, {404: ResourceNotFoundError})
    raise HttpResponseError(response=response, error_format=ARMErrorFormat)


def aks_clusters(emu: Emulator) -> list[dict[str, Any]]:
    return [c for c in emu.fleet.clusters() if c.get("kind") == "ProvisionedCluster"]


def test_it_returns_the_provisioned_cluster_instance_of_an_aks_arc_cluster(emu: Emulator, arm: Get) -> None:
    cluster = aks_clusters(emu)[0]
    response = arm(cluster["id"].upper() + INSTANCE.lower())  # ARM paths are case-insensitive
    assert response.status_code == 200
    body = response.json()
    assert body == emu.fleet.provisioned_cluster_instances[cluster["id"].lower()]
    assert body["id"] == cluster["id"] + INSTANCE
    assert body["name"] == cluster["name"]  # the official example's quirk
    assert body["type"] == "Microsoft.HybridContainerService/provisionedClusterInstances"
    assert body["extendedLocation"]["type"] == "CustomLocation"
    assert "x-ms-ratelimit-remaining-subscription-reads" in response.headers


def test_instances_reference_logical_networks_that_exist_in_resource_graph(emu: Emulator) -> None:
    networks = {
        r["id"].lower()
        for rows in emu.fleet.tables["resources"].values()
        for r in rows
        if r["type"] == "microsoft.azurestackhci/logicalnetworks"
    }
    users: dict[str, int] = {}
    for instance in emu.fleet.provisioned_cluster_instances.values():
        for subnet in instance["properties"]["cloudProviderProfile"]["infraNetworkProfile"]["vnetSubnetIds"]:
            assert subnet.lower() in networks
            users[subnet.lower()] = users.get(subnet.lower(), 0) + 1
    assert max(users.values()) > 1  # some logical networks are shared by several clusters


def test_it_answers_404_for_clusters_that_are_not_aks_arc_or_do_not_exist(emu: Emulator, arm: Get) -> None:
    other = next(c for c in emu.fleet.clusters() if c.get("kind") != "ProvisionedCluster")
    missing = aks_clusters(emu)[0]["id"].rsplit("/", 1)[0] + "/no-such-cluster"
    for resource_id in (other["id"] + INSTANCE, missing + INSTANCE):
        response = arm(resource_id)
        assert response.status_code == 404
        with pytest.raises(ResourceNotFoundError) as caught:
            raise_arm_error(response)
        assert caught.value.error is not None and caught.value.error.code == "ResourceNotFound"


def test_it_rejects_other_api_versions_and_unknown_subscriptions(emu: Emulator, arm: Get) -> None:
    cluster = aks_clusters(emu)[0]
    wrong_version = arm(cluster["id"] + INSTANCE, "2022-05-01-preview")
    assert wrong_version.status_code == 400
    assert wrong_version.json()["error"]["code"] == "NoRegisteredProviderFound"
    stranger = arm(
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
        "Microsoft.Kubernetes/connectedClusters/x" + INSTANCE
    )
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "SubscriptionNotFound")


def test_it_returns_the_arm_shape_of_a_connected_cluster_even_with_a_hostile_name(emu: Emulator, arm: Get) -> None:
    cluster = next(c for c in emu.fleet.clusters() if c["name"] == HOSTILE_NAMES[1])
    response = arm(cluster["id"])
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == cluster["id"] and body["name"] == HOSTILE_NAMES[1]
    assert body["type"] == "Microsoft.Kubernetes/connectedClusters"
    assert body["properties"] == cluster["properties"]
    assert " " in body["location"] or body["location"][0].isupper()  # display form, e.g. "East US"


def test_forbidden_subscriptions_get_403_on_arm_too(emu: Emulator, arm: Get) -> None:
    cluster = aks_clusters(emu)[0]
    emu.faults.forbid_subscriptions([cluster["subscriptionId"]])
    response = arm(cluster["id"] + INSTANCE)
    assert response.status_code == 403
    assert "Microsoft.HybridContainerService/provisionedClusterInstances/read" in response.json()["error"]["message"]


def test_the_sdk_retries_an_arm_429_after_retry_after(emu: Emulator, arm: Get) -> None:
    emu.set_arm_throttle((1, 2.0))
    cluster = aks_clusters(emu)[0]
    assert arm(cluster["id"] + INSTANCE).status_code == 200
    assert arm(cluster["id"] + INSTANCE).status_code == 200  # 429 + Retry-After: 1, then retried
    assert [r["status"] for r in emu.requests("arm")] == [200, 429, 200]
