"""Network resources of a subscription: Private Link Scopes, private endpoints, Arc gateways,
Azure Local logical networks and Key Vaults (all in the `resources` table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azure_emulator.fleet import catalog
from azure_emulator.fleet.containers import SubPlan
from azure_emulator.fleet.context import GenContext
from azure_emulator.fleet.rand import Weighted, guid

PLS_TYPE = "microsoft.hybridcompute/privatelinkscopes"
LEGACY_PLS_TYPE = "microsoft.kubernetesconfiguration/privatelinkscopes"
ENDPOINT_TYPE = "microsoft.network/privateendpoints"
GATEWAY_TYPE = "microsoft.hybridcompute/gateways"
LOGICAL_NETWORK_TYPE = "microsoft.azurestackhci/logicalnetworks"
VAULT_TYPE = "microsoft.keyvault/vaults"

_CONNECTION = Weighted({"Approved": 70, "Pending": 12, "Rejected": 8, "Disconnected": 10})
_GATEWAY_STATE = Weighted({"Succeeded": 80, "Failed": 10, "Creating": 5, "Updating": 5})
_LN_SHAPE = Weighted({"full": 80, "shared_with_vms": 15, "minimal": 5})


@dataclass(frozen=True)
class Scope:
    row_id: str
    reference_id: str  # as clusters store it: Microsoft.HybridCompute/privateLinkScopes
    location: str
    public_access: str
    approved: bool  # has an Approved private endpoint connection


@dataclass
class SubNetwork:
    scopes: list[Scope] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    logical_networks: list[str] = field(default_factory=list)
    vaults: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, location, props


@dataclass(frozen=True)
class NetworkNeeds:
    scopes: bool
    gateways: bool
    aks_clusters: int


def build_network(ctx: GenContext, plan: SubPlan, needs: NetworkNeeds) -> SubNetwork:
    rng, cover = ctx.rng, plan.index == 0  # subscription 0 carries every network case
    net = SubNetwork()
    scope_count = 3 if cover else (rng.choice((0, 1, 1, 1, 2)) or (1 if needs.scopes else 0))
    for n in range(scope_count):
        net.scopes.append(_scope(ctx, plan, n, cover))
    if cover or rng.random() < 0.1:
        _legacy_scope(ctx, plan)
    gateway_count = 3 if cover else min(5, (1 if needs.gateways else 0) + rng.choice((0, 0, 1, 2)))
    for n in range(gateway_count):
        state = ("Succeeded", "Failed", "Creating")[n] if cover else _GATEWAY_STATE.pick(rng)
        net.gateways.append(_gateway(ctx, plan, n, state))
    if needs.aks_clusters or cover:
        pool = max(2 if cover else 1, needs.aks_clusters // 3)
        for n in range(pool):
            shape = ("minimal", "shared_with_vms")[n] if cover and n < 2 else _LN_SHAPE.pick(rng)
            net.logical_networks.append(_logical_network(ctx, plan, n, shape))
    for n in range(3 if cover else rng.choice((1, 1, 2, 3))):
        net.vaults.append(_vault(ctx, plan, n, cover))
    return net


def _rg_row(ctx: GenContext, plan: SubPlan, provider: str, name: str, type_: str) -> dict[str, Any]:
    rg, rg_lower = plan.rg(3)
    row = ctx.base(
        f"/subscriptions/{plan.sub_id}/resourceGroups/{rg}/providers/{provider}/{name}",
        name,
        type_,
        plan.sub_id,
        rg_lower,
    )
    row["location"] = plan.region
    return row


def _scope(ctx: GenContext, plan: SubPlan, n: int, cover: bool) -> Scope:
    rng = ctx.rng
    name = f"pls-arc-{plan.region}-{n:02d}"
    # Casing quirk (azure.md §4.1): the scope id has microsoft.hybridcompute/privateLinkScopes.
    row = _rg_row(ctx, plan, "microsoft.hybridcompute/privateLinkScopes", name, PLS_TYPE)
    if cover:
        access = ("Disabled", "Enabled", "Disabled")[n]
        statuses = (("Approved", "Pending"), ("Rejected", "Disconnected"), ())[n]
    else:
        access = "Disabled" if rng.random() < 0.6 else "Enabled"
        statuses = tuple(_CONNECTION.pick(rng) for _ in range(rng.choice((0, 1, 1, 1, 2))))
    connections = [
        _connection(
            ctx,
            plan,
            row["id"],
            f"{name}-s{plan.index:04d}-pe-{i}",  # unique in the hub subscription too
            status,
            hub=(cover and i == 0) or (not cover and rng.random() < 0.3),
            moved=(cover and i == 0) or (not cover and rng.random() < 0.2),
        )
        for i, status in enumerate(statuses)
    ]
    row["tags"] = {}
    row["properties"] = {
        "privateLinkScopeId": guid(rng),
        "provisioningState": "Succeeded",
        "publicNetworkAccess": access,
        "privateEndpointConnections": connections,
    }
    ctx.add("resources", plan.sub_id, row)
    reference = row["id"].replace("microsoft.hybridcompute/privateLinkScopes", "Microsoft.HybridCompute/privateLinkScopes")
    return Scope(row["id"], reference, plan.region, access, "Approved" in statuses)


def _connection(ctx: GenContext, plan: SubPlan, target: str, name: str, status: str, *, hub: bool, moved: bool) -> dict[str, Any]:
    """An inline PLS connection plus its private endpoint, possibly in the hub subscription."""
    endpoint_sub = ctx.hub_subscription if hub else plan.sub_id
    location = plan.region
    if moved:  # an endpoint in another region than its scope and clusters
        others = [r for r in catalog.REGIONS if r != plan.region]
        location = others[ctx.rng.randrange(len(others))]
    endpoint_id = _endpoint(ctx, endpoint_sub, name, location, target, "hybridcompute", status)
    return {
        "id": f"{target}/privateEndpointConnections/{name}-{guid(ctx.rng)[:8]}",
        "name": f"{name}-conn",
        "type": "Microsoft.HybridCompute/privateLinkScopes/privateEndpointConnections",
        "properties": {
            "provisioningState": "Succeeded",
            "privateEndpoint": {"id": endpoint_id},
            "privateLinkServiceConnectionState": _state(status),
            "groupIds": ["hybridcompute"],
        },
    }


def _state(status: str) -> dict[str, str]:
    description = "Auto-approved" if status == "Approved" else f"{status} by network team"
    return {"status": status, "description": description, "actionsRequired": "None"}


def _endpoint(ctx: GenContext, sub: str, name: str, location: str, target: str, group: str, status: str) -> str:
    endpoint_id = f"/subscriptions/{sub}/resourceGroups/rg-network/providers/Microsoft.Network/privateEndpoints/{name}"
    connection = {
        "name": f"{name}-link",
        "id": f"{endpoint_id}/privateLinkServiceConnections/{name}-link",
        "properties": {
            "privateLinkServiceId": target,
            "groupIds": [group],
            "requestMessage": "" if status == "Approved" else "Please approve",
            "privateLinkServiceConnectionState": _state(status),
        },
    }
    manual = status == "Pending"  # pending requests come from manual-approval endpoints
    row = ctx.base(endpoint_id, name, ENDPOINT_TYPE, sub, "rg-network")
    row["location"] = location
    row["properties"] = {
        "provisioningState": "Succeeded",
        "privateLinkServiceConnections": [] if manual else [connection],
        "manualPrivateLinkServiceConnections": [connection] if manual else [],
        "subnet": {
            "id": f"/subscriptions/{sub}/resourceGroups/rg-network/providers/Microsoft.Network/"
            f"virtualNetworks/vnet-hub-{location}/subnets/snet-endpoints"
        },
        "networkInterfaces": [
            {"id": f"/subscriptions/{sub}/resourceGroups/rg-network/providers/Microsoft.Network/networkInterfaces/{name}.nic"}
        ],
        "customDnsConfigs": [],
    }
    ctx.add("resources", sub, row)
    return endpoint_id


def _legacy_scope(ctx: GenContext, plan: SubPlan) -> None:
    name = f"k8s-pls-{plan.index:04d}"
    row = _rg_row(ctx, plan, "Microsoft.KubernetesConfiguration/privateLinkScopes", name, LEGACY_PLS_TYPE)
    row["properties"] = {
        "provisioningState": "Succeeded",
        "publicNetworkAccess": "Enabled" if ctx.rng.random() < 0.5 else "Disabled",
        "privateLinkScopeName": name,
    }
    ctx.add("resources", plan.sub_id, row)


def _gateway(ctx: GenContext, plan: SubPlan, n: int, state: str) -> str:
    name = f"arcgw-{plan.region}-{n}"
    row = _rg_row(ctx, plan, "Microsoft.HybridCompute/gateways", name, GATEWAY_TYPE)
    gateway_id = guid(ctx.rng)
    row["properties"] = {
        "provisioningState": state,
        "gatewayId": gateway_id,
        "gatewayType": "Public",
        "gatewayEndpoint": f"https://{gateway_id[:12]}.gw.arc.azure.com",
        "allowedFeatures": ["*"],
    }
    ctx.add("resources", plan.sub_id, row)
    return row["id"]


def _logical_network(ctx: GenContext, plan: SubPlan, n: int, shape: str) -> str:
    rng = ctx.rng
    name = f"lnet-{plan.region}-{n:03d}"
    rg, rg_lower = plan.rg(2)
    ln_id = f"/subscriptions/{plan.sub_id}/resourceGroups/{rg}/providers/Microsoft.AzureStackHCI/logicalNetworks/{name}"
    row = ctx.base(ln_id, name, LOGICAL_NETWORK_TYPE, plan.sub_id, rg_lower)
    row["location"] = plan.region
    row["extendedLocation"] = {"type": "CustomLocation", "name": plan.custom_location}
    if shape == "minimal":
        row["properties"] = {"provisioningState": "Succeeded"}
    else:
        third = rng.randrange(256)
        references = []
        if shape == "shared_with_vms":
            references = [
                {
                    "ID": f"/subscriptions/{plan.sub_id}/resourceGroups/{rg}/providers/"
                    f"Microsoft.AzureStackHCI/networkInterfaces/vm-{name}-nic-{i}"
                }
                for i in range(rng.randint(1, 4))
            ]
        row["properties"] = {
            "provisioningState": "Succeeded",
            "vmSwitchName": "ConvergedSwitch(compute_management)",
            "dhcpOptions": {"dnsServers": [f"10.{third}.0.10", f"10.{third}.0.11"]},
            "status": {"provisioningStatus": {"status": "Succeeded"}},
            "subnets": [
                {
                    "name": f"{name}-subnet",
                    "properties": {
                        "addressPrefix": f"10.{third}.{n % 256}.0/24",
                        "ipAllocationMethod": "Static",
                        "vlan": 100 + rng.randrange(3900),
                        "ipPools": [
                            {
                                "name": "vm-pool",
                                "ipPoolType": "vm",
                                "start": f"10.{third}.{n % 256}.20",
                                "end": f"10.{third}.{n % 256}.200",
                            }
                        ],
                        "routeTable": {
                            "properties": {
                                "routes": [
                                    {
                                        "name": "default",
                                        "properties": {
                                            "addressPrefix": "0.0.0.0/0",
                                            "nextHopIpAddress": f"10.{third}.{n % 256}.1",
                                        },
                                    }
                                ]
                            }
                        },
                        "ipConfigurationReferences": references,
                    },
                }
            ],
        }
    ctx.add("resources", plan.sub_id, row)
    return ln_id


def _vault(ctx: GenContext, plan: SubPlan, n: int, cover: bool) -> tuple[str, str, dict[str, Any]]:
    rng = ctx.rng
    name = f"kv-arc-{plan.index:04d}-{n}"
    row = _rg_row(ctx, plan, "Microsoft.KeyVault/vaults", name, VAULT_TYPE)
    access = ("Disabled", "Enabled", None)[n] if cover else rng.choice(("Enabled", "Disabled", "Disabled", None))
    acl = ("Deny", "Allow", None)[n] if cover else rng.choice(("Allow", "Deny", None))
    statuses = (("Approved",), (), ("Pending",))[n] if cover else (() if rng.random() < 0.5 else (_CONNECTION.pick(rng),))
    properties: dict[str, Any] = {
        "tenantId": ctx.tenant_id,
        "sku": {"family": "A", "name": "standard"},
        "enableRbacAuthorization": True,
        "vaultUri": f"https://{name}.vault.azure.net/",
        "provisioningState": "Succeeded",
        "privateEndpointConnections": [
            {
                "id": f"{row['id']}/privateEndpointConnections/{name}-pe-{i}",
                "properties": {
                    "provisioningState": "Succeeded",
                    "privateEndpoint": {
                        "id": _endpoint(
                            ctx,
                            plan.sub_id,
                            f"{name}-pe-{i}",
                            plan.region,
                            row["id"],
                            "vault",
                            status,
                        )
                    },
                    "privateLinkServiceConnectionState": _state(status),
                },
            }
            for i, status in enumerate(statuses)
        ],
    }
    if access is not None:
        properties["publicNetworkAccess"] = access
    if acl is not None:
        properties["networkAcls"] = {
            "bypass": "AzureServices",
            "defaultAction": acl,
            "ipRules": [],
            "virtualNetworkRules": [],
        }
    row["properties"] = properties
    ctx.add("resources", plan.sub_id, row)
    return row["id"], plan.region, properties
