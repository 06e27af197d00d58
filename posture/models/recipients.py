"""How each recipient receives a rule's items: digest entries waiting for a user's daily digest,
and distribution addresses that unsubscribed from a rule (posture/alerts/digest.py, unsubscribe.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from posture.models.alerts import AlertRule, Notification


class DigestEntry(models.Model):
    """A rule's items for a user who takes that rule as a daily digest, written in the transaction
    that planned the rule's other rows. Pending until the alert tick puts it in a digest
    (`notification`), in the same transaction that writes the digest's row."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digest_entries")
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rule_name = models.CharField(max_length=120)
    source = models.CharField(max_length=200)
    items = models.JSONField(default=list)
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
