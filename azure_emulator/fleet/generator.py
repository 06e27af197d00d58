"""Deterministic fleet generator: the same (clusters, seed, now) always gives the same fleet."""

from __future__ import annotations

import gc
import random
from datetime import UTC, datetime

from azure_emulator.fleet import catalog
from azure_emulator.fleet.aksarc import instance_body
from azure_emulator.fleet.clusters import Profile, cluster_row, draw_profile
from azure_emulator.fleet.containers import (
    SubPlan,
    container_rows,
    management_groups,
    plan_subscriptions,
)
from azure_emulator.fleet.context import GenContext
from azure_emulator.fleet.evidence import EvidenceBuilder
from azure_emulator.fleet.model import Fleet
from azure_emulator.fleet.network import PLS_TYPE, VAULT_TYPE, NetworkNeeds, build_network
from azure_emulator.fleet.rand import stable_guid

CLUSTERS_PER_SUBSCRIPTION = 50
MAX_CLUSTERS = 100_000


def generate_fleet(clusters: int, seed: int, *, now: datetime | None = None) -> Fleet:
    if not 1 <= clusters <= MAX_CLUSTERS:
        raise ValueError(f"clusters must be between 1 and {MAX_CLUSTERS}")
    # Millions of small, acyclic dicts: the cycle collector would only rescan them over and over.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(clusters, seed, now)
    finally:
        if enabled:
            gc.enable()


def _generate(clusters: int, seed: int, now: datetime | None) -> Fleet:
    now = now or datetime.now(UTC)
    tenant_id = stable_guid("tenant", seed)
    ctx = GenContext(seed, tenant_id, now, stable_guid("hub", seed), random.Random(seed))
    groups = management_groups(tenant_id)
    plans = plan_subscriptions(ctx, max(2, round(clusters / CLUSTERS_PER_SUBSCRIPTION)), clusters)
    container_rows(ctx, plans, groups)
    first = 0
    for plan in plans:
        _subscription(ctx, plan, [draw_profile(ctx, k) for k in range(first, first + plan.cluster_count)])
        first += plan.cluster_count
    for by_sub in ctx.tables.values():
        for rows in by_sub.values():
            rows.sort(key=lambda row: row["id"].lower())
    return Fleet(
        tenant_id=tenant_id,
        seed=seed,
        cluster_count=clusters,
        generated_at=now,
        subscriptions={p.sub_id: p.subscription for p in plans},
        management_groups=groups,
        tables=ctx.tables,
        provisioned_cluster_instances=ctx.instances,
    )


def _subscription(ctx: GenContext, plan: SubPlan, profiles: list[Profile]) -> None:
    rng = ctx.rng
    needs = NetworkNeeds(
        scopes=any(p.private_link in ("valid", "valid_other_region") for p in profiles),
        gateways=any(p.gateway == "old" for p in profiles),
        aks_clusters=sum(p.distribution == catalog.AKS for p in profiles),
    )
    net = build_network(ctx, plan, needs)
    evidence = EvidenceBuilder(ctx, plan)
    for profile in profiles:
        row = cluster_row(ctx, plan, net, profile)
        ctx.add("resources", plan.sub_id, row)
        if profile.distribution == catalog.AKS:
            ctx.instances[row["id"].lower()] = instance_body(ctx, plan, net, row)
        installed = evidence.extensions(profile, row)
        evidence.cluster_policies(profile, row, installed)
        if "defender" in installed or rng.random() < 0.3:
            evidence.cluster_assessments(row, rng.randint(1, 3))
    for scope in net.scopes:
        evidence.resource_policy(
            scope.row_id,
            scope.location,
            PLS_TYPE,
            catalog.POLICY_PLS_PUBLIC_ACCESS,
            scope.public_access == "Disabled",
        )
        evidence.resource_policy(
            scope.row_id,
            scope.location,
            PLS_TYPE,
            catalog.POLICY_PLS_PRIVATE_ENDPOINT,
            scope.approved,
        )
    for vault_id, location, props in net.vaults:
        private = props.get("publicNetworkAccess") == "Disabled"
        approved = any(
            c["properties"]["privateLinkServiceConnectionState"]["status"] == "Approved" for c in props["privateEndpointConnections"]
        )
        firewall = private or props.get("networkAcls", {}).get("defaultAction") == "Deny"
        for guid, ok in (
            (catalog.POLICY_KV_PUBLIC_ACCESS, private),
            (catalog.POLICY_KV_PRIVATE_LINK, approved),
            (catalog.POLICY_KV_FIREWALL, firewall),
        ):
            evidence.resource_policy(vault_id, location, VAULT_TYPE, guid, ok)
        evidence.assessments({"id": vault_id}, [catalog.OTHER_ASSESSMENTS[0][0]])
    vm_id = (
        f"/subscriptions/{plan.sub_id}/resourceGroups/{plan.rg(0)[0]}/providers/Microsoft.Compute/virtualMachines/vm-jump-{plan.index:04d}"
    )
    evidence.assessments({"id": vm_id}, [catalog.OTHER_ASSESSMENTS[1][0]])
    evidence.managed_cluster_extensions(1 if plan.index == 0 else round(rng.random() * len(profiles) / 25))
