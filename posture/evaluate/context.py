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
    # For fingerprints of what each cluster's verdicts depend on (see inputs()).
    resource_hashes: dict[str, str] = field(default_factory=dict)
    vault_hashes: dict[str, str] = field(default_factory=dict)
    network_user_hashes: dict[str, str] = field(default_factory=dict)
    decisions: list[tuple[Attestation | RiskException, str]] = field(default_factory=list)
    base: str = ""

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

    def inputs(self, row: dict[str, Any], refs: str) -> str:
        """Fingerprint of everything a cluster's verdicts depend on: its facts, its staleness, the
        resources it references (with its Private Link Scope's endpoints), the other users of its
        logical networks, its subscription's vaults, the attestations and exceptions matching it,
        and the catalog. Equal fingerprints give equal verdicts, so the checks can be skipped."""
        stale = self.is_stale(row["connectivity_status"] or None, row["last_connectivity_at"])
        parts = [self.base, row["facts_hash"], "stale" if stale else "fresh"]
        for ref in refs.split("\n") if refs else ():
            if ref.startswith(VAULTS):
                parts.append(f"{ref}={self.vault_hashes.get(ref[len(VAULTS) :], '-')}")
                continue
            parts.append(f"{ref}={self.resource_hashes.get(ref, '-')}={self.network_user_hashes.get(ref, '')}")
            for connection in (self.resources.get(ref) or {}).get("connections") or ():
                target = connection.get("target")
                parts.append(f"{target}={self.resource_hashes.get(target, '-')}")
        cluster = {"pk": row["pk"], "subscription_id": row["subscription_id"], "resource_group": row["resource_group"], "tags": row["tags"]}
        parts += [version for decision, version in self.decisions if decision.matches(cluster)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


VAULTS = "vaults:"
VAULT_EXTENSIONS = ("microsoft.azurekeyvaultsecretsprovider", "microsoft.azure.secretstore")


def context_refs(facts: dict[str, Any]) -> str:
    """The context entries a cluster's checks read (see Context.inputs), newline-separated."""
    instance = facts.get("provisioned_instance") or {}
    refs = [facts.get("private_link_scope_id"), facts.get("gateway_resource_id"), *(instance.get("vnet_subnet_ids") or [])]
    if any(e.get("type") in VAULT_EXTENSIONS for e in facts.get("extensions") or []):
        refs.append(f"{VAULTS}{facts.get('subscription_id', '')}")
    return "\n".join(sorted({r for r in refs if r}))


def _digest(values: Any) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def build_context(now: dt.datetime | None = None) -> Context:
    now = now or timezone.now()
    ctx = Context(now=now, stale_after=dt.timedelta(hours=settings.ARC_STALE_AFTER_HOURS))
    ctx.base = f"{CATALOG_VERSION}:{settings.ARC_STALE_AFTER_HOURS}"
    vaults: dict[str, list[tuple[str, str]]] = defaultdict(list)
    resources = AzureResource.objects.filter(removed_at__isnull=True).values_list("key", "data", "data_hash")
    for key, data, data_hash in resources.iterator(chunk_size=2000):
        ctx.resources[key] = data
        ctx.resource_hashes[key] = data_hash
        if data.get("type") == KEY_VAULT:
            ctx.vaults_by_subscription.setdefault(data.get("subscription_id", ""), []).append(data)
            vaults[data.get("subscription_id", "")].append((key, data_hash))
    ctx.vault_hashes = {sub: _digest(sorted(items)) for sub, items in vaults.items()}
    users: dict[str, set[str]] = defaultdict(set)
    rows = Cluster.objects.filter(removed_at__isnull=True, kind__iexact="ProvisionedCluster").values_list(
        "key", "facts__provisioned_instance__vnet_subnet_ids"
    )
    for key, subnet_ids in rows.iterator(chunk_size=5000):
        for network in subnet_ids if isinstance(subnet_ids, list) else []:
            users[network].add(key)
    ctx.logical_network_users = dict(users)
    ctx.network_user_hashes = {network: _digest(sorted(keys)) for network, keys in users.items()}
    for attestation in Attestation.objects.filter(revoked_at__isnull=True, expires_at__gt=now).order_by("pk"):
        ctx.attestations.setdefault(attestation.control, []).append(attestation)
        ctx.decisions.append((attestation, _decision_version(attestation, attestation.statement, attestation.evidence_url)))
    for exception in RiskException.objects.filter(state=RiskException.State.APPROVED, expires_at__gt=now).order_by("pk"):
        ctx.exceptions.setdefault(exception.control, []).append(exception)
        ctx.decisions.append((exception, _decision_version(exception, exception.owner, exception.justification)))
    return ctx


def _decision_version(obj: Any, *texts: str) -> str:
    return f"{type(obj).__name__}{obj.pk}:{obj.control}:{obj.expires_at.isoformat()}:{_digest(texts)}"
