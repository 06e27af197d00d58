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
from posture.collect.queries import KEY_VAULT
from posture.models import Attestation, AzureResource, Cluster, RiskException

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
    base: str = ""
    # Live decisions by what they target, built from `attestations` and `exceptions` on first use.
    _targets: dict[tuple[str, Any], list[tuple[int, str, Decision]]] | None = field(default=None, repr=False)
    _last: tuple[Any, list[tuple[str, Decision]]] = field(default=(None, []), repr=False)

    def resource(self, key: str | None) -> dict[str, Any] | None:
        return self.resources.get(key) if key else None

    def covering(self, cluster: dict[str, Any]) -> list[tuple[str, Decision]]:
        """The live attestations, then exceptions, whose target covers `cluster` (pk,
        subscription_id, resource_group, tags), newest first. Looked up by target, so the cost
        follows the decisions that can apply, not all of them."""
        if not self.attestations and not self.exceptions:
            return []
        memo = (cluster["pk"], cluster["subscription_id"], cluster["resource_group"], repr(sorted((cluster.get("tags") or {}).items())))
        if self._last[0] == memo:  # the fingerprint and then each control ask for the same cluster
            return self._last[1]
        if self._targets is None:
            self._targets = {}
            decisions = [(c, d) for group in (self.attestations, self.exceptions) for c, items in group.items() for d in items]
            for order, (control, decision) in enumerate(decisions):
                self._targets.setdefault(_target_key(decision), []).append((order, control, decision))
        keys = [("cluster", cluster["pk"]), ("subscription", cluster["subscription_id"])]
        keys += [("tag", str(key)) for key in cluster.get("tags") or {}]
        found = sorted((item for key in keys for item in self._targets.get(key, ())), key=lambda item: item[0])
        covering = [(control, decision) for _, control, decision in found if decision.matches(cluster)]
        self._last = (memo, covering)
        return covering

    def attestation_for(self, control: str, cluster: dict[str, Any]) -> Attestation | None:
        return next((d for c, d in self.covering(cluster) if c == control and isinstance(d, Attestation)), None)

    def exception_for(self, control: str, cluster: dict[str, Any]) -> RiskException | None:
        return next((d for c, d in self.covering(cluster) if c == control and isinstance(d, RiskException)), None)

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
        if self.attestations or self.exceptions:
            parts += [_decision_version(decision) for _, decision in self.covering(cluster_keys(row))]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()


Decision = Attestation | RiskException


def cluster_keys(row: dict[str, Any]) -> dict[str, Any]:
    """What decisions are matched on (see Target.matches), from a cluster row."""
    return {"pk": row["pk"], "subscription_id": row["subscription_id"], "resource_group": row["resource_group"], "tags": row["tags"]}


def _target_key(decision: Decision) -> tuple[str, Any]:
    if decision.cluster_id:
        return ("cluster", decision.cluster_id)
    if decision.subscription_id:
        return ("subscription", decision.subscription_id)
    return ("tag", decision.tag_key)


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
    # Newest first: the verdict cites the latest decision; the pk makes the order total.
    for attestation in Attestation.objects.filter(revoked_at__isnull=True, expires_at__gt=now).order_by("-created_at", "-pk"):
        ctx.attestations.setdefault(attestation.control, []).append(attestation)
    for exception in RiskException.objects.filter(state=RiskException.State.APPROVED, expires_at__gt=now).order_by("-requested_at", "-pk"):
        ctx.exceptions.setdefault(exception.control, []).append(exception)
    return ctx


def _decision_version(decision: Decision) -> str:
    texts = (decision.statement, decision.evidence_url) if isinstance(decision, Attestation) else (decision.owner, decision.justification)
    return f"{type(decision).__name__}{decision.pk}:{decision.control}:{decision.expires_at.isoformat()}:{_digest(texts)}"
