"""Connected clusters (`microsoft.kubernetes/connectedclusters` rows in `resources`).

Each cluster is first drawn as a Profile: one value per dimension. The first members of each
population (all clusters, AKS clusters, other clusters) take the dimension's coverage list in
order, so every case exists once a fleet has 40 clusters; later ones are weighted random draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from azure_emulator.fleet import catalog
from azure_emulator.fleet.containers import SubPlan
from azure_emulator.fleet.context import GenContext
from azure_emulator.fleet.network import SubNetwork
from azure_emulator.fleet.rand import Weighted, ago, cover, guid, iso

CLUSTER_TYPE = "microsoft.kubernetes/connectedclusters"
PROVISIONED_CLUSTER = "ProvisionedCluster"
MISSING = "<missing>"  # the property is left out of the row
AGENT_CERTIFICATE = "MIICYzCCAcygAwIBAgIBADANBgkqhkiG9w0BAQUFADAuMQswCQYDVQQGEwJVUzEMMAoGA1UEChMDSUJN"

_DISTRIBUTION_COVER = (
    "aks",
    "k3s",
    "rancher_rke",
    "aks",
    "openshift",
    "eks",
    "aks",
    "gke",
    "generic",
    "aks_edge_k3s",
) * 4
_KIND_COVER: tuple[str | None, ...] = (MISSING, None, "")
_CONNECTIVITY_COVER = (
    "Connected",
    "Offline",
    "Connecting",
    "Expired",
    "AgentNotInstalled",
    MISSING,
)
_PRIVATE_LINK_COVER = (
    "disabled",
    "valid",
    "empty",
    "missing_scope",
    "absent",
    "valid_other_region",
)
_GATEWAY_COVER = ("new", "old", "absent", "null", "disabled", "old")
_WORKLOAD_IDENTITY_COVER = ("true", "false", MISSING)
_OIDC_COVER = ("true", "false", MISSING)
_AAD_COVER = ("true", "false", MISSING)
_AGENT_COVER = ("errors", "manual", MISSING, "normal")
_PROVISIONING_COVER = (
    "Succeeded",
    "Failed",
    "Updating",
    "Provisioning",
    "Deleting",
    "Canceled",
    "Accepted",
)
_IDENTITY_COVER = ("system", "none", MISSING)
_TAGS_COVER: tuple[str | int, ...] = ("normal", "empty", *range(len(catalog.HOSTILE_TEXT)))

_DISTRIBUTION = Weighted(catalog.DISTRIBUTION_WEIGHTS)
_KIND = Weighted({MISSING: 80, None: 15, "": 5})
_CONNECTIVITY = Weighted(
    {
        "Connected": 70,
        "Offline": 12,
        "Connecting": 4,
        "Expired": 6,
        "AgentNotInstalled": 3,
        MISSING: 5,
    }
)
_PRIVATE_LINK = Weighted(
    {
        "disabled": 66,
        "absent": 8,
        "valid": 18,
        "empty": 2,
        "missing_scope": 2,
        "valid_other_region": 4,
    }
)
_GATEWAY = Weighted({"absent": 55, "null": 10, "disabled": 15, "old": 8, "new": 12})
_TRI = Weighted({"true": 35, "false": 45, MISSING: 20})
_AGENT = Weighted({"normal": 70, "errors": 10, "manual": 10, MISSING: 10})
_PROVISIONING = Weighted(
    {
        "Succeeded": 90,
        "Failed": 4,
        "Updating": 2,
        "Provisioning": 2,
        "Deleting": 1,
        "Canceled": 0.5,
        "Accepted": 0.5,
    }
)
_IDENTITY = Weighted({"system": 90, "none": 5, MISSING: 5})
_TAGS: Weighted[str | int] = Weighted({"normal": 70, "empty": 22, 0: 1, 3: 1, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1, 11: 1})
_SITES = ("store", "plant", "branch", "depot", "clinic", "lab", "dc")


@dataclass
class Profile:
    index: int
    distribution: str
    kind: str | None
    name: str
    connectivity: str
    private_link: str
    gateway: str
    workload_identity: str
    oidc: str
    aad: str
    agent: str
    provisioning: str
    identity: str
    tags: str | int
    all_extensions: bool | None  # True: all, False: none, None: draw per extension


def draw_profile(ctx: GenContext, index: int) -> Profile:
    rng = ctx.rng
    distribution = cover(_DISTRIBUTION_COVER, index, _DISTRIBUTION, rng)
    site = f"{_SITES[index % len(_SITES)]}{rng.randrange(1000):03d}"
    if distribution == catalog.AKS:
        ctx.next("aks")
        kind: str | None = PROVISIONED_CLUSTER
        name = f"aks-{site}-{index:06d}"  # never hostile: AKS Arc names feed ARM GETs by id
    else:
        other = ctx.next("other")
        kind = cover(_KIND_COVER, other, _KIND, rng)
        name = f"{distribution.replace('_', '-')}-{site}-{index:06d}"
        if other < len(catalog.HOSTILE_NAMES):
            name = catalog.HOSTILE_NAMES[other]
        elif rng.random() < 0.02:
            name = f"{catalog.HOSTILE_NAMES[rng.randrange(len(catalog.HOSTILE_NAMES))]}-{index}"
    return Profile(
        index=index,
        distribution=distribution,
        kind=kind,
        name=name,
        connectivity=cover(_CONNECTIVITY_COVER, index, _CONNECTIVITY, rng),
        private_link=cover(_PRIVATE_LINK_COVER, index, _PRIVATE_LINK, rng),
        gateway=cover(_GATEWAY_COVER, index, _GATEWAY, rng),
        workload_identity=cover(_WORKLOAD_IDENTITY_COVER, index, _TRI, rng),
        oidc=cover(_OIDC_COVER, index, _TRI, rng),
        aad=cover(_AAD_COVER, index, _TRI, rng),
        agent=cover(_AGENT_COVER, index, _AGENT, rng),
        provisioning=cover(_PROVISIONING_COVER, index, _PROVISIONING, rng),
        identity=cover(_IDENTITY_COVER, index, _IDENTITY, rng),
        tags=cover(_TAGS_COVER, index, _TAGS, rng),
        all_extensions=True if index < 8 else (False if index == 8 else None),
    )


def cluster_row(ctx: GenContext, plan: SubPlan, net: SubNetwork, p: Profile) -> dict[str, Any]:
    rng, now = ctx.rng, ctx.now
    dist = catalog.DISTRIBUTIONS[p.distribution]
    rg, rg_lower = plan.rg(2) if p.distribution == catalog.AKS else plan.rg(rng.randrange(2))
    cluster_id = f"/subscriptions/{plan.sub_id}/resourceGroups/{rg}/providers/Microsoft.Kubernetes/connectedClusters/{p.name}"
    row = ctx.base(cluster_id, p.name, CLUSTER_TYPE, plan.sub_id, rg_lower)
    if p.kind != MISSING:
        row["kind"] = p.kind
    location = plan.region if rng.random() < 0.75 else catalog.REGIONS[rng.randrange(len(catalog.REGIONS))]
    props: dict[str, Any] = {
        "agentPublicKeyCertificate": AGENT_CERTIFICATE,
        "kubernetesVersion": dist.k8s_versions[rng.randrange(len(dist.k8s_versions))],
        "totalNodeCount": 0 if p.connectivity == "AgentNotInstalled" else rng.randint(1, 48),
        "provisioningState": p.provisioning,
        "distribution": dist.values[0] if rng.random() < 0.8 else dist.values[-1],
        "infrastructure": dist.infrastructures[rng.randrange(len(dist.infrastructures))],
        "azureHybridBenefit": "NotApplicable" if p.distribution != catalog.AKS else rng.choice(("True", "False")),
        "managedIdentityCertificateExpirationTime": iso(now + timedelta(days=rng.randint(5, 85))),
    }
    if rng.random() < 0.4:
        props["totalCoreCount"] = props["totalNodeCount"] * 4
    if p.connectivity != "AgentNotInstalled":
        props["agentVersion"] = catalog.AGENT_VERSIONS[rng.randrange(len(catalog.AGENT_VERSIONS))]
    _connectivity(ctx, p, props)
    location = _private_link(ctx, net, p, props, location)
    _gateway(ctx, net, p, props)
    _profiles(ctx, p, props, location)
    row["location"] = location
    row["tags"] = _tags(ctx, p)
    if p.identity == "system":
        row["identity"] = {
            "type": "SystemAssigned",
            "principalId": guid(rng),
            "tenantId": ctx.tenant_id,
        }
    elif p.identity == "none":
        row["identity"] = {"type": "None"}
    row["properties"] = props
    return row


def _connectivity(ctx: GenContext, p: Profile, props: dict[str, Any]) -> None:
    rng, now, status = ctx.rng, ctx.now, p.connectivity
    if status != MISSING:
        props["connectivityStatus"] = status
    windows = {
        "Connected": (timedelta(minutes=1), timedelta(minutes=55)),
        "Connecting": (timedelta(0), timedelta(minutes=10)),
        "Offline": (timedelta(hours=2), timedelta(days=30)),
        "Expired": (timedelta(days=91), timedelta(days=400)),
        MISSING: (timedelta(minutes=5), timedelta(days=3)),
    }
    if status in windows:
        low, high = windows[status]
        props["lastConnectivityTime"] = iso(ago(now, rng, low, high))


def _private_link(ctx: GenContext, net: SubNetwork, p: Profile, props: dict[str, Any], location: str) -> str:
    rng, mode = ctx.rng, p.private_link
    if mode == "absent":
        return location
    props["privateLinkState"] = "Disabled" if mode == "disabled" else "Enabled"
    if mode in ("valid", "valid_other_region"):
        scope = net.scopes[rng.randrange(len(net.scopes))]
        props["privateLinkScopeResourceId"] = scope.reference_id
        if mode == "valid_other_region":
            others = [r for r in catalog.REGIONS if r != scope.location]
            return others[rng.randrange(len(others))]
    elif mode == "empty":
        props["privateLinkScopeResourceId"] = ""
    elif mode == "missing_scope":
        sub = ctx.hub_subscription if rng.random() < 0.5 else guid(rng)
        props["privateLinkScopeResourceId"] = (
            f"/subscriptions/{sub}/resourceGroups/rg-network/providers/Microsoft.HybridCompute/privateLinkScopes/pls-deleted-{p.index}"
        )
    return location


def _gateway(ctx: GenContext, net: SubNetwork, p: Profile, props: dict[str, Any]) -> None:
    mode = p.gateway
    if mode == "null":
        props["gateway"] = None
    elif mode == "disabled":
        props["gateway"] = {"enabled": False}
    elif mode == "new":
        props["gateway"] = {"enabled": True}
    elif mode == "old":  # 2024 preview shape that still carried the gateway id
        props["gateway"] = {
            "enabled": True,
            "resourceId": net.gateways[ctx.rng.randrange(len(net.gateways))],
        }


def _profiles(ctx: GenContext, p: Profile, props: dict[str, Any], location: str) -> None:
    rng = ctx.rng
    if p.workload_identity != MISSING:
        props["securityProfile"] = {"workloadIdentity": {"enabled": p.workload_identity == "true"}}
    if p.oidc == "true":
        props["oidcIssuerProfile"] = {
            "enabled": True,
            "issuerUrl": f"https://oidcdiscovery-{location}-endpoint.z01.azurefd.net/{ctx.tenant_id}/{guid(rng)}/",
        }
    elif p.oidc == "false":
        props["oidcIssuerProfile"] = {"enabled": False}
    if p.aad != MISSING:
        props["aadProfile"] = {
            "enableAzureRBAC": p.aad == "true",
            "adminGroupObjectIDs": [guid(rng)],
            "tenantID": ctx.tenant_id,
        }
    if p.agent != MISSING:
        errors = []
        if p.agent == "errors":
            errors = [
                {
                    "component": "clusterconnect-agent",
                    "severity": "Error",
                    "message": "Upgrade failed for agent clusterconnect-agent, version not found",
                    "time": iso(ago(ctx.now, rng, timedelta(hours=1), timedelta(days=5))),
                }
            ]
        props["arcAgentProfile"] = {
            "agentAutoUpgrade": "Disabled" if p.agent == "manual" else "Enabled",
            "agentErrors": errors,
            "agentState": "Failed" if errors else "Succeeded",
            "systemComponents": [],
        }


def _tags(ctx: GenContext, p: Profile) -> dict[str, str]:
    if p.tags == "empty":
        return {}
    if isinstance(p.tags, int):
        hostile = catalog.HOSTILE_TEXT
        return {hostile[p.tags]: hostile[(p.tags + 1) % len(hostile)], "env": "prod"}
    rng = ctx.rng
    return {
        "env": ("prod", "staging", "dev")[rng.randrange(3)],
        "owner": f"team-{rng.randrange(40):02d}",
        "site": f"site-{p.index % 997:03d}",
    }
