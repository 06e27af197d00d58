"""How each recipient receives a rule's items: digest entries waiting for a user's daily digest,
and distribution addresses that unsubscribed from a rule (posture/alerts/digest.py, unsubscribe.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from posture.models.alerts import AlertRule, AlertTrigger, Notification


class DigestEntry(models.Model):
    """A rule's items for a user who takes that rule as a daily digest, written in the transaction
    that planned the rule's other rows. Pending until the alert tick puts it in a digest
    (`notification`), in the same transaction that writes the digest's row."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digest_entries")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(max_length=120)
    source = models.CharField(max_length=200)
    # The rule's items: its trigger's, shared with the rule's other recipients (entries written
    # before triggers existed keep their own in `items`). Read them with listed().
    trigger = models.ForeignKey(AlertTrigger, null=True, blank=True, on_delete=models.PROTECT, related_name="digest_entries")
    items = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    # The first time the subscription's digest hour comes after the entry was written.
    due_at = models.DateTimeField()
    # Deleting a digest's row deletes its entries with it: they were sent, never to come back.
    notification = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="digest_entries")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "rule", "source"], name="digest_entry_once_per_trigger")]
        indexes = [models.Index(fields=["due_at"], name="digest_entry_pending", condition=models.Q(notification__isnull=True))]

    def __str__(self) -> str:
        return f"{self.rule_name} → user {self.user_id} ({self.source})"

    def listed(self) -> list[dict[str, Any]]:
        """The items it holds for the digest: its trigger's, or its own."""
        return self.trigger.items if self.trigger_id is not None else self.items


class AlertOptOut(models.Model):
    """A distribution address that unsubscribed from a rule: editing the rule's addresses does not
    bring it back. Addresses are kept lower-case."""

    address = models.CharField(max_length=254)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="opt_outs")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "address"], name="alert_opt_out_once")]

    def __str__(self) -> str:
        return f"{self.address} ✕ {self.rule_id}"
