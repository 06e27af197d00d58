"""Management groups, subscriptions and resource groups (`resourcecontainers`)."""

from __future__ import annotations

from dataclasses import dataclass

from azure_emulator.fleet import catalog
from azure_emulator.fleet.context import GenContext
from azure_emulator.fleet.model import TENANT_LEVEL, ManagementGroup, Subscription
from azure_emulator.fleet.rand import Weighted, guid

SUBSCRIPTION_TYPE = "microsoft.resources/subscriptions"
RESOURCE_GROUP_TYPE = "microsoft.resources/subscriptions/resourcegroups"
MANAGEMENT_GROUP_TYPE = "microsoft.management/managementgroups"
_STATES = Weighted({"Enabled": 95, "Warned": 3, "PastDue": 1, "Disabled": 1})
_WORKLOAD_GROUPS = Weighted({name: share for name, _, _, share in catalog.MANAGEMENT_GROUPS if share})


@dataclass
class SubPlan:
    """Layout of one subscription, decided before its resources are generated."""

    subscription: Subscription
    index: int
    region: str
    resource_groups: list[tuple[str, str]]  # (ARM name, lower-case)
    custom_location: str
    cluster_count: int

    @property
    def sub_id(self) -> str:
        return self.subscription.subscription_id

    def rg(self, index: int) -> tuple[str, str]:
        return self.resource_groups[index % len(self.resource_groups)]


def management_groups(tenant_id: str) -> dict[str, ManagementGroup]:
    groups = [ManagementGroup(tenant_id, "Tenant Root Group", None)]
    groups += [ManagementGroup(name, display, parent or tenant_id) for name, display, parent, _ in catalog.MANAGEMENT_GROUPS]
    return {g.name.lower(): g for g in groups}


def plan_subscriptions(ctx: GenContext, count: int, clusters: int) -> list[SubPlan]:
    """Subscriptions with their clusters split evenly; the last one is the network hub."""
    plans = []
    base, extra = divmod(clusters, count)
    for index in range(count):
        is_hub = index == count - 1
        sub_id = ctx.hub_subscription if is_hub else guid(ctx.rng)
        if is_hub:
            group = catalog.HUB_GROUP
        elif index == 0:
            group = "contoso-edge-retail"  # coverage: a subscription two levels below a group
        else:
            group = _WORKLOAD_GROUPS.pick(ctx.rng)
        state = "Enabled" if index == 0 or is_hub else _STATES.pick(ctx.rng)
        label = "Contoso Hub" if is_hub else group.replace("contoso-", "Contoso ").title()
        display = f"{label} {index:04d}"
        region = catalog.REGIONS[ctx.rng.randrange(len(catalog.REGIONS))]
        names = [f"rg-arc-{region}", "RG-Edge-Sites", f"rg-aks-hci-{index % 17:02d}", "rg-network"]
        plans.append(
            SubPlan(
                Subscription(sub_id, display, group, state, is_hub),
                index,
                region,
                [(name, name.lower()) for name in names],
                f"/subscriptions/{sub_id}/resourceGroups/rg-aks-hci-{index % 17:02d}/providers/"
                f"Microsoft.ExtendedLocation/customLocations/cl-{region}-{index:04d}",
                base + (1 if index < extra else 0),
            )
        )
    return plans


def container_rows(ctx: GenContext, plans: list[SubPlan], groups: dict[str, ManagementGroup]) -> None:
    for group in groups.values():
        ctx.add("resourcecontainers", TENANT_LEVEL, _group_row(ctx, group, groups))
    for plan in plans:
        sub = plan.subscription
        ctx.add(
            "resourcecontainers",
            plan.sub_id,
            {
                "id": f"/subscriptions/{sub.subscription_id}",
                "name": sub.display_name,
                "type": SUBSCRIPTION_TYPE,
                "tenantId": ctx.tenant_id,
                "subscriptionId": sub.subscription_id,
                "tags": {} if plan.index % 3 else {"costCenter": f"cc-{plan.index:04d}"},
                "properties": {
                    "state": sub.state,
                    "subscriptionPolicies": {
                        "locationPlacementId": "Public_2014-09-01",
                        "quotaId": "EnterpriseAgreement_2014-09-01",
                        "spendingLimit": "Off",
                    },
                    "managementGroupAncestorsChain": _chain(sub.management_group, groups),
                },
            },
        )
        for name, lower in plan.resource_groups:
            row = ctx.base(
                f"/subscriptions/{sub.subscription_id}/resourceGroups/{name}",
                name,
                RESOURCE_GROUP_TYPE,
                sub.subscription_id,
                lower,
            )
            row["location"] = plan.region
            row["properties"] = {"provisioningState": "Succeeded"}
            ctx.add("resourcecontainers", plan.sub_id, row)


def _chain(group: str, groups: dict[str, ManagementGroup]) -> list[dict[str, str]]:
    chain = []
    current: ManagementGroup | None = groups[group.lower()]
    while current is not None:
        chain.append({"name": current.name, "displayName": current.display_name})
        current = groups[current.parent.lower()] if current.parent else None
    return chain


def _group_row(ctx: GenContext, group: ManagementGroup, groups: dict[str, ManagementGroup]) -> dict:
    details: dict = {"managementGroupAncestorsChain": _chain(group.parent, groups) if group.parent else []}
    if group.parent:
        parent = groups[group.parent.lower()]
        details["parent"] = {
            "id": f"/providers/Microsoft.Management/managementGroups/{parent.name}",
            "name": parent.name,
            "displayName": parent.display_name,
        }
    return {
        "id": f"/providers/Microsoft.Management/managementGroups/{group.name}",
        "name": group.name,
        "type": MANAGEMENT_GROUP_TYPE,
        "tenantId": ctx.tenant_id,
        "properties": {
            "displayName": group.display_name,
            "tenantId": ctx.tenant_id,
            "details": details,
        },
    }
