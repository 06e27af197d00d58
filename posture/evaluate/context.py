"""Everything a check may look up besides the cluster's own facts, loaded once per run."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from posture.models import Attestation, AzureResource, Cluster, RiskException
from posture.queries import KEY_VAULT


@dataclass
class Context:
    now: dt.datetime
    stale_after: dt.timedelta
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    vaults_by_subscription: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # logical network key -> keys of the clusters whose instances use it
    logical_network_users: dict[str, set[str]] = field(default_factory=dict)
    attestations: dict[str, list[Attestation]] = field(default_factory=dict)
    exceptions: dict[str, list[RiskException]] = field(default_factory=dict)

    def resource(self, key: str | None) -> dict[str, Any] | None:
        return self.resources.get(key) if key else None

    def attestation_for(self, control: str, cluster: dict[str, Any]) -> Attestation | None:
        return next((a for a in self.attestations.get(control, ()) if a.matches(cluster)), None)

    def exception_for(self, control: str, cluster: dict[str, Any]) -> RiskException | None:
        return next((e for e in self.exceptions.get(control, ()) if e.matches(cluster)), None)


def build_context(now: dt.datetime | None = None) -> Context:
    now = now or timezone.now()
    ctx = Context(now=now, stale_after=dt.timedelta(hours=settings.ARC_STALE_AFTER_HOURS))
    for key, data in AzureResource.objects.filter(removed_at__isnull=True).values_list("key", "data").iterator(chunk_size=2000):
        ctx.resources[key] = data
        if data.get("type") == KEY_VAULT:
            ctx.vaults_by_subscription.setdefault(data.get("subscription_id", ""), []).append(data)
    users: dict[str, set[str]] = defaultdict(set)
    rows = Cluster.objects.filter(removed_at__isnull=True, kind__iexact="ProvisionedCluster").values_list(
        "key", "facts__provisioned_instance__vnet_subnet_ids"
    )
    for key, subnet_ids in rows.iterator(chunk_size=5000):
        for network in subnet_ids if isinstance(subnet_ids, list) else []:
            users[network].add(key)
    ctx.logical_network_users = dict(users)
    for attestation in Attestation.objects.filter(revoked_at__isnull=True, expires_at__gt=now):
        ctx.attestations.setdefault(attestation.control, []).append(attestation)
    for exception in RiskException.objects.filter(state=RiskException.State.APPROVED, expires_at__gt=now):
        ctx.exceptions.setdefault(exception.control, []).append(exception)
    return ctx
