"""Rows from Resource Graph are untrusted: odd values are kept as far as known and reported."""

from __future__ import annotations

import pytest

from posture import normalize

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/Edge-RG/providers/Microsoft.Kubernetes/connectedClusters/store-042"
)


def row(**overrides):
    base = {
        "id": CLUSTER_ID,
        "name": "store-042",
        "location": "East US",
        "subscriptionId": "00000000-0000-0000-0000-0000000000AA",
        "resourceGroup": "edge-rg",
        "kind": "ProvisionedCluster",
        "tags": {"env": "prod"},
        "connectivityStatus": "Connected",
        "lastConnectivityTime": "2026-11-26T10:11:12.1234567Z",
        "privateLinkState": "Enabled",
        "privateLinkScopeResourceId": "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/net/providers/Microsoft.HybridCompute/privateLinkScopes/pls1",
        "gatewayEnabled": None,
        "gatewayResourceId": "",
        "workloadIdentityEnabled": True,
    }
    base.update(overrides)
    return base


def problems(record):
    return {(p["field"], p["issue"]) for p in record["problems"]}


def test_a_well_formed_row_becomes_facts() -> None:
    record = normalize.cluster_record(row())
    assert record["subscription_id"] == "00000000-0000-0000-0000-0000000000aa"
    assert record["location"] == "eastus"
    assert record["last_connectivity_time"] == "2026-11-26T10:11:12.123456+00:00"
    assert record["private_link_scope_id"].endswith("/microsoft.hybridcompute/privatelinkscopes/pls1")
    assert record["gateway_enabled"] is None and record["workload_identity_enabled"] is True
    assert normalize.network_path(record) == "private_link"


@pytest.mark.parametrize(
    "overrides,field,issue,expected",
    [
        ({"connectivityStatus": ""}, "connectivityStatus", "missing", None),
        ({"connectivityStatus": "Hibernating"}, "connectivityStatus", "unknown value", "Hibernating"),
        ({"connectivityStatus": "connected"}, None, None, "Connected"),
        ({"privateLinkState": 1}, "privateLinkState", "unexpected type", "1"),
        ({"gatewayEnabled": "true"}, "gatewayEnabled", "unexpected type", True),
        ({"gatewayEnabled": {"x": 1}}, "gatewayEnabled", "unexpected type", None),
        ({"lastConnectivityTime": "yesterday"}, "lastConnectivityTime", "not a date-time", None),
        ({"tags": "env=prod"}, "tags", "unexpected type", {}),
        ({"gatewayResourceId": "not-an-id"}, "gatewayResourceId", "not a resource id", None),
    ],
)
def test_odd_values_are_reported_not_trusted(overrides, field, issue, expected) -> None:
    record = normalize.cluster_record(row(**overrides))
    value = {
        "connectivityStatus": record["connectivity_status"],
        "privateLinkState": record["private_link_state"],
        "gatewayEnabled": record["gateway_enabled"],
        "lastConnectivityTime": record["last_connectivity_time"],
        "tags": record["tags"],
        "gatewayResourceId": record["gateway_resource_id"],
        None: record["connectivity_status"],
    }[field if field else None]
    assert value == expected
    if field:
        assert (field, issue) in problems(record)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "text",
        42,
        {"id": None},
        {"id": "/subscriptions/x"},
        {"id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm"},
    ],
)
def test_rows_without_a_cluster_id_are_ignored(bad) -> None:
    assert normalize.cluster_record(bad) is None


def test_a_missing_private_link_state_makes_the_path_unknown() -> None:
    record = normalize.cluster_record(row(privateLinkState=""))
    assert record["private_link_state"] is None
    assert normalize.network_path(record) == "unknown"


@pytest.mark.parametrize(
    "gateway,resource,path",
    [
        (True, "", "both"),
        (
            None,
            "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/r/providers/Microsoft.HybridCompute/gateways/gw",
            "both",
        ),
    ],
)
def test_old_and_new_gateway_shapes_count_as_gateway(gateway, resource, path) -> None:
    assert normalize.network_path(normalize.cluster_record(row(gatewayEnabled=gateway, gatewayResourceId=resource))) == path


def test_extension_rows_in_either_casing_attach_to_their_cluster() -> None:
    owner, ext = normalize.extension_record(
        {
            "id": CLUSTER_ID.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
            + "/providers/Microsoft.KubernetesConfiguration/extensions/azurepolicy",
            "name": "azurepolicy",
            "extensionType": "microsoft.policyinsights",
            "provisioningState": "Succeeded",
        }
    )
    assert owner == CLUSTER_ID.lower()
    assert ext["type"] == "microsoft.policyinsights" and ext["provisioning_state"] == "Succeeded"


def test_fact_hash_ignores_the_order_of_child_rows() -> None:
    a = normalize.cluster_record(row())
    b = normalize.cluster_record(row())
    a["extensions"] = [{"name": "b"}, {"name": "a"}]
    b["extensions"] = [{"name": "a"}, {"name": "b"}]
    assert normalize.fact_hash(normalize.finish(a)) == normalize.fact_hash(normalize.finish(b))


def test_provisioned_instance_profile_is_read_defensively() -> None:
    body = {
        "properties": {
            "networkProfile": {"networkPolicy": "Calico", "podCidr": "10.244.0.0/16"},
            "cloudProviderProfile": {
                "infraNetworkProfile": {
                    "vnetSubnetIds": [
                        "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/r/providers/Microsoft.AzureStackHCI/logicalNetworks/LN1",
                        7,
                    ]
                }
            },
            "clusterVMAccessProfile": {"authorizedIPRanges": "10.0.0.0/8, 0.0.0.0/0"},
        }
    }
    record = normalize.provisioned_instance_record(body)
    assert record["network_policy"] == "calico"
    assert record["vnet_subnet_ids"] == [
        "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourcegroups/r/providers/microsoft.azurestackhci/logicalnetworks/ln1"
    ]
    assert record["authorized_ip_ranges"] == "10.0.0.0/8, 0.0.0.0/0"
    assert normalize.provisioned_instance_record(None) == {"found": False}
    assert normalize.provisioned_instance_record({"properties": "weird"})["network_policy"] is None


def test_resource_rows_keep_connections_and_skip_malformed_ones() -> None:
    record = normalize.resource_record(
        {
            "id": "/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/net/providers/microsoft.hybridcompute/privateLinkScopes/pls1",
            "type": "microsoft.hybridcompute/privatelinkscopes",
            "name": "pls1",
            "location": "eastus",
            "publicNetworkAccess": "Disabled",
            "privateEndpointConnections": [
                {
                    "properties": {
                        "privateEndpoint": {
                            "id": "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/hub/providers/Microsoft.Network/privateEndpoints/pe1"
                        },
                        "privateLinkServiceConnectionState": {"status": "Approved"},
                        "groupIds": ["hybridcompute"],
                    }
                },
                "garbage",
                {"properties": None},
            ],
        }
    )
    assert record["public_network_access"] == "Disabled"
    assert record["connections"] == [
        {
            "target": "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourcegroups/hub/providers/microsoft.network/privateendpoints/pe1",
            "status": "Approved",
            "group_ids": ["hybridcompute"],
        }
    ]
