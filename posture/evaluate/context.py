"""Everything a check may look up besides the cluster's own facts, loaded once per run."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from posture.catalog.controls import CATALOG_VERSION
from posture.models import Attestation, AzureResource, Cluster, RiskException
from posture.queries import KEY_VAULT

STALE_STATUSES = ("Offline", "Expired", "AgentNotInstalled")


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
    # Fingerprint of everything above: equal stamps and equal facts give equal verdicts.
    stamp: str = ""

    def resource(self, key: str | None) -> dict[str, Any] | None:
        return self.resources.get(key) if key else None

    def attestation_for(self, control: str, cluster: dict[str, Any]) -> Attestation | None:
        for attestation in self.attestations.get(control, ()):
            if attestation.matches(cluster):
                return attestation
        return None

    def exception_for(self, control: str, cluster: dict[str, Any]) -> RiskException | None:
        for exception in self.exceptions.get(control, ()):
            if exception.matches(cluster):
                return exception
        return None

    def is_stale(self, connectivity_status: str | None, last_contact: dt.datetime | None) -> bool:
        """Offline, Expired, AgentNotInstalled, or silent for longer than the threshold."""
        if connectivity_status in STALE_STATUSES:
            return True
        return last_contact is not None and self.now - last_contact > self.stale_after

    def inputs(self, facts_hash: str, connectivity_status: str | None, last_contact: dt.datetime | None) -> str:
        stale = self.is_stale(connectivity_status, last_contact)
        return hashlib.sha256(f"{facts_hash}|{self.stamp}|{stale}".encode()).hexdigest()


def build_context(now: dt.datetime | None = None) -> Context:
    now = now or timezone.now()
    ctx = Context(now=now, stale_after=dt.timedelta(hours=settings.ARC_STALE_AFTER_HOURS))
    stamp = hashlib.sha256(f"{CATALOG_VERSION}|{settings.ARC_STALE_AFTER_HOURS}".encode())
    resources = AzureResource.objects.filter(removed_at__isnull=True).order_by("key").values_list("key", "data", "data_hash")
    for key, data, data_hash in resources.iterator(chunk_size=2000):
        ctx.resources[key] = data
        stamp.update(f"|{key}={data_hash}".encode())
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
    for network, keys in sorted(users.items()):
        stamp.update(f"|{network}:{','.join(sorted(keys))}".encode())
    for attestation in Attestation.objects.filter(revoked_at__isnull=True, expires_at__gt=now).order_by("pk"):
        ctx.attestations.setdefault(attestation.control, []).append(attestation)
        stamp.update(_decision_stamp(attestation, attestation.statement, attestation.evidence_url))
    for exception in RiskException.objects.filter(state=RiskException.State.APPROVED, expires_at__gt=now).order_by("pk"):
        ctx.exceptions.setdefault(exception.control, []).append(exception)
        stamp.update(_decision_stamp(exception, exception.owner, exception.justification))
    ctx.stamp = stamp.hexdigest()
    return ctx


def _decision_stamp(obj: Any, *texts: str) -> bytes:
    target = (obj.cluster_id, obj.subscription_id, obj.resource_group, obj.tag_key, obj.tag_value)
    return f"|{type(obj).__name__}{obj.pk}:{obj.control}:{obj.expires_at.isoformat()}:{target}:{texts}".encode()
