"""ARG-shaped rows, normalized facts and evaluation contexts for the control tests.

Rows go through the same normalization as a scan, so casing quirks (PascalCase extension
properties, mixed-case ids) are exercised end to end.
"""

from __future__ import annotations

import datetime as dt

from posture import normalize
from posture.evaluate.context import Context

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SUB = "11111111-1111-1111-1111-111111111111"
HUB = "22222222-2222-2222-2222-222222222222"
RG = f"/subscriptions/{SUB}/resourceGroups/Edge"
CLUSTER = f"{RG}/providers/Microsoft.Kubernetes/connectedClusters/Store-7"
SCOPE_ID = f"{RG}/providers/Microsoft.HybridCompute/privateLinkScopes/pls-east"
SCOPE_ROW_ID = f"{RG}/providers/microsoft.hybridcompute/privateLinkScopes/pls-east"  # ARG's casing quirk
PE_ID = f"/subscriptions/{HUB}/resourceGroups/hub/providers/Microsoft.Network/privateEndpoints/pe-arc"
GATEWAY_ID = f"{RG}/providers/Microsoft.HybridCompute/gateways/gw1"
LNET = f"{RG}/providers/Microsoft.AzureStackHCI/logicalNetworks/lnet-aks"
VAULT_ID = f"{RG}/providers/Microsoft.KeyVault/vaults/kv1"


def cluster_row(**overrides):
    row = {
        "id": CLUSTER,
        "name": "Store-7",
        "location": "eastus",
        "subscriptionId": SUB,
        "resourceGroup": "edge",
        "kind": None,
        "tags": {},
        "connectivityStatus": "Connected",
        "lastConnectivityTime": "2026-11-26T11:00:00Z",
        "privateLinkState": "Disabled",
        "privateLinkScopeResourceId": "",
        "gatewayEnabled": None,
        "gatewayResourceId": "",
        "workloadIdentityEnabled": True,
        "oidcIssuerEnabled": True,
    }
    row.update(overrides)
    return row


def extension(ext_type, state="Succeeded", casing="pascal", name=None):
    keys = ("ExtensionType", "ProvisioningState") if casing == "pascal" else ("extensionType", "provisioningState")
    # ARG's query coalesces both casings into these columns; the id casing varies by table.
    return {
        "id": CLUSTER.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
        + f"/providers/Microsoft.KubernetesConfiguration/extensions/{name or ext_type}",
        "name": name or ext_type,
        "extensionType": ext_type if casing == "pascal" else ext_type.upper(),
        "provisioningState": state,
        "_keys": keys,
    }


def facts(row=None, extensions=(), policy_states=(), instance=False):
    record = normalize.cluster_record(row or cluster_row())
    for ext in extensions:
        _owner, item = normalize.extension_record({k: v for k, v in ext.items() if k != "_keys"})
        record["extensions"].append(item)
    for definition, state in policy_states:
        record["policy_states"].append({"definition": definition, "state": state, "assignment": "a", "timestamp": None})
    if instance is not False:
        record["provisioned_instance"] = normalize.provisioned_instance_record(instance)
    return normalize.finish(record)


def resource(row):
    return normalize.resource_record(row)


def scope_row(access="Disabled", location="eastus", status="Approved"):
    return {
        "id": SCOPE_ROW_ID,
        "type": "microsoft.hybridcompute/privatelinkscopes",
        "name": "pls-east",
        "location": location,
        "subscriptionId": SUB,
        "publicNetworkAccess": access,
        "privateEndpointConnections": [
            {"properties": {"privateEndpoint": {"id": PE_ID}, "privateLinkServiceConnectionState": {"status": status}}}
        ],
    }


def endpoint_row(location="eastus", group="hybridcompute"):
    return {
        "id": PE_ID,
        "type": "microsoft.network/privateendpoints",
        "name": "pe-arc",
        "location": location,
        "subscriptionId": HUB,
        "privateLinkServiceConnections": [
            {
                "properties": {
                    "privateLinkServiceId": SCOPE_ID,
                    "groupIds": [group],
                    "privateLinkServiceConnectionState": {"status": "Approved"},
                }
            }
        ],
    }


def context(*rows, lnet_users=None, attestations=None, exceptions=None):
    ctx = Context(now=NOW, stale_after=dt.timedelta(hours=24))
    for row in rows:
        record = resource(row)
        ctx.resources[record["id"].lower()] = record
        if record["type"] == "microsoft.keyvault/vaults":
            ctx.vaults_by_subscription.setdefault(record["subscription_id"], []).append(record)
    ctx.logical_network_users = lnet_users or {}
    ctx.attestations = attestations or {}
    ctx.exceptions = exceptions or {}
    return ctx


def instance(policy="calico", subnets=(LNET,)):
    return {
        "properties": {
            "networkProfile": {"networkPolicy": policy},
            "cloudProviderProfile": {"infraNetworkProfile": {"vnetSubnetIds": list(subnets)}},
        }
    }


AKS = {"kind": "ProvisionedCluster"}
PL = {"privateLinkState": "Enabled", "privateLinkScopeResourceId": SCOPE_ID}
GW_NEW = {"gatewayEnabled": True}
GW_OLD = {"gatewayEnabled": True, "gatewayResourceId": GATEWAY_ID}
LNET_ROW = {
    "id": LNET,
    "type": "microsoft.azurestackhci/logicalnetworks",
    "name": "lnet-aks",
    "location": "eastus",
    "subscriptionId": SUB,
    "subnets": [{"name": "s", "properties": {"vlan": 10, "ipConfigurationReferences": []}}],
}
GUARDRAIL = "233a2a17-77ca-4fb1-9b6b-69223d272a44"
POLICY_OK = [extension("microsoft.policyinsights")]


def cluster_info(f):
    return {"pk": 1, "subscription_id": f["subscription_id"], "resource_group": f["resource_group"], "tags": f["tags"]}
