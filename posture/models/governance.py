"""Attestations (what Azure cannot show, vouched for by an analyst) and exceptions (risk
accepted for a while, approved by an admin). Both are versioned in GovernanceEvent."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from posture.models.scans import GUID_RE


class Target(models.Model):
    """What a decision applies to: one cluster, or a selector (subscription, resource group, tag)."""

    cluster = models.ForeignKey("posture.Cluster", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    subscription_id = models.CharField(max_length=36, blank=True)
    resource_group = models.CharField(max_length=90, blank=True)
    tag_key = models.CharField(max_length=512, blank=True)
    tag_value = models.CharField(max_length=512, blank=True)

    class Meta:
        abstract = True

    def clean_target(self) -> None:
        self.subscription_id = self.subscription_id.strip().lower()
        chosen = [bool(self.cluster_id), bool(self.subscription_id), bool(self.tag_key)]
        if sum(chosen) != 1:
            raise ValidationError("Choose exactly one target: a cluster, a subscription (optionally with a resource group), or a tag.")
        if self.subscription_id and not GUID_RE.match(self.subscription_id):
            raise ValidationError({"subscription_id": "Enter a subscription GUID."})
        if self.resource_group and not self.subscription_id:
            raise ValidationError({"resource_group": "A resource group needs its subscription."})

    def matches(self, cluster: dict[str, Any]) -> bool:
        """`cluster` holds pk, subscription_id, resource_group, tags."""
        if self.cluster_id:
            return self.cluster_id == cluster["pk"]
        if self.subscription_id:
            if cluster["subscription_id"] != self.subscription_id:
                return False
            return not self.resource_group or cluster["resource_group"].lower() == self.resource_group.lower()
        tags = cluster.get("tags") or {}
        return self.tag_key in tags and (not self.tag_value or tags[self.tag_key] == self.tag_value)

    @property
    def target_label(self) -> str:
        if self.cluster_id:
            return f"cluster {self.cluster.name}" if self.cluster else "cluster (removed)"
        if self.subscription_id:
            rg = f" / resource group {self.resource_group}" if self.resource_group else ""
            return f"subscription {self.subscription_id}{rg}"
        return f"tag {self.tag_key}={self.tag_value}" if self.tag_value else f"tag {self.tag_key}"


class Attestation(Target):
    control = models.CharField(max_length=32)
    statement = models.TextField(help_text="What holds and how it was verified")
    evidence_url = models.URLField(blank=True, max_length=1000)
    attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"attestation of {self.control} for {self.target_label}"

    def is_active(self, now: Any) -> bool:
        return self.revoked_at is None and self.expires_at > now


class RiskException(Target):
    class State(models.TextChoices):
        REQUESTED = "requested"
        APPROVED = "approved"
        REJECTED = "rejected"
        REVOKED = "revoked"

    LIVE_STATES = (State.REQUESTED, State.APPROVED)  # may still be revoked

    control = models.CharField(max_length=32)
    justification = models.TextField()
    owner = models.CharField(max_length=200, help_text="Who owns the risk and its remediation")
    state = models.CharField(max_length=16, choices=State.choices, default=State.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"exception of {self.control} for {self.target_label}"

    def is_active(self, now: Any) -> bool:
        return self.state == self.State.APPROVED and self.expires_at > now


class GovernanceEvent(models.Model):
    """Version history of attestations and exceptions: who did what, when, and the new state."""

    kind = models.CharField(max_length=16)  # attestation | exception
    object_id = models.PositiveBigIntegerField()
    action = models.CharField(max_length=16)  # created, changed, approved, rejected, revoked
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["kind", "object_id", "-at"], name="governance_object")]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} {self.action}"
