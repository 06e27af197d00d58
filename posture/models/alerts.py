"""Alert rules, who subscribes to them, and the outbox of notifications (posture/alerts/).

A rule names a kind of event (its parameters in `params`, checked by posture/alerts/kinds.py) and
limits on what it covers; its recipients are its subscribed users and its distribution addresses.
Each message to send is a Notification row, written when the triggering data is final and sent by
a Celery task that claims it; the row is the message's whole history.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        # Parameters, limits and triggers of each kind: posture/alerts/kinds.py.
        CONTROL_REGRESSION = "control_regression", "A control regresses (starts failing or turns unknown)"
        SCORE_DROP = "score_drop", "A cluster's score drops"
        CLUSTER_STALE = "cluster_stale", "A cluster is stale or offline for hours"
        PRIVATE_LINK = "private_link", "Private Link is disabled or a Private Link Scope opens public access"
        GOVERNANCE_EXPIRY = "governance_expiry", "An attestation or exception expires"
        NEW_FAILING_CLUSTER = "new_failing_cluster", "A new cluster fails a control"
        SCAN_FAILED = "scan_failed", "A scan fails or is throttled"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True, help_text="The kind's parameters (posture/alerts/kinds.py)")
    # Limits; an empty list means "any". Subscriptions and resource groups are kept lower-case
    # (Azure compares them so); tags are {"key": ..., "value": ...} with value null for "any value".
    scopes = models.JSONField(default=list, blank=True, help_text="Scope ids")
    subscriptions = models.JSONField(default=list, blank=True)
    resource_groups = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    controls = models.JSONField(default=list, blank=True)
    severities = models.JSONField(default=list, blank=True)
    addresses = models.JSONField(default=list, blank=True, help_text="Distribution addresses, besides the subscribed users")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertSubscription(models.Model):
    """A user's own subscription to a rule: every message at once, or a daily digest."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        DIGEST = "digest", "Daily digest"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscriptions")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="subscribers")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.IMMEDIATE)
    digest_hour = models.PositiveSmallIntegerField(null=True, blank=True, help_text="UTC hour of the digest (0-23)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "rule"], name="alert_subscription_once"),
            models.CheckConstraint(
                condition=models.Q(mode="immediate", digest_hour__isnull=True)
                | models.Q(mode="digest", digest_hour__gte=0, digest_hour__lte=23),
                name="alert_subscription_digest_hour",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.rule_id} ({self.mode})"


class AlertTrigger(models.Model):
    """What one rule reports for one trigger (a scan's close, a re-evaluation, an episode), stored
    once and shared by every recipient's Notification and DigestEntry: a 5,000-item list is
    written once per rule, not once per recipient. Never changed once written, so a worker may
    keep what it rendered from it (posture/alerts/messages.py)."""

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="triggers")
    rule_name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=AlertRule.Kind.choices)
    source = models.CharField(max_length=200)
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The items, as Notification.changes holds them for a message of its own.
    items = models.JSONField(default=list)
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "source"], name="alert_trigger_once")]

    def __str__(self) -> str:
        return f"{self.rule_name} ({self.source}, {self.item_count} items)"


# Messages that no single rule sends (posture/alerts/digest.py, cap.py): Notification.rule is null.
MESSAGE_KINDS = [("digest", "Daily digest"), ("cap_summary", "What the daily cap held back")]


class Notification(models.Model):
    """One message to one recipient: the outbox row, written in the transaction that makes its
    trigger final and sent by posture.send_notification (posture/alerts/delivery.py).

    States: pending (waiting for its first or next attempt at `next_attempt_at`) → sending (a
    worker claimed it and talks to the SMTP server; DATA not begun) → handing_over (written just
    before the DATA command: from here the server may accept the message) → sent. A worker that
    dies in `sending` sent nothing, so the row goes back to pending; one that dies in
    `handing_over` may have delivered it, so the row becomes `unconfirmed` and is never sent again
    (the server's log has it under `message_id`). `failed` is final: a refused recipient or
    message (5xx), a bad address, or retries exhausted. `held` is final too: the recipient's
    daily cap was reached, and a later message summarises the row (posture/alerts/cap.py)."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        HANDING_OVER = "handing_over", "Handing over to the mail server"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        UNCONFIRMED = "unconfirmed", "Unconfirmed (worker lost while the server took the message)"
        # Over the recipient's daily cap (ARC_ALERT_DAILY_CAP): not sent; summarised in the next
        # message to the recipient (`summarised_in`), or by the alert tick's summary the next day.
        HELD = "held", "Held back by the daily cap"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    # Kept when the rule is deleted: the history still says what sent it.
    rule_name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=[*AlertRule.Kind.choices, *MESSAGE_KINDS])
    # What triggered it, as a key unique per rule and recipient: "scan:<id>" for a scan's changes
    # (later "digest:<user>:<date>", "expiry:<record>:<date>"...). A planner run twice writes nothing new.
    source = models.CharField(max_length=200)
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipient = models.CharField(max_length=254)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    # What it reports, as it stood when planned: the trigger's items, shared with the rule's other
    # recipients; a message of its own (a digest, a cap summary) keeps them in `changes` instead.
    # Read them with items().
    trigger = models.ForeignKey(AlertTrigger, null=True, blank=True, on_delete=models.PROTECT, related_name="notifications")
    changes = models.JSONField(default=list, blank=True)
    item_count = models.PositiveIntegerField(default=0, help_text="How many items it reports")
    message_id = models.CharField(max_length=255, unique=True, help_text="The Message-ID header: the same on every attempt")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # When a send task was last queued for it: the watchdog queues a due row again only after this
    # is stale (a lost message, a Redis restart, a retry longer than the broker holds a countdown).
    queued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    smtp_reply = models.CharField(max_length=500, blank=True, help_text="The server's answer to DATA")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the daily cap held back from this recipient, summarised here (posture/alerts/cap.py);
    # a held row names the row that summarised it (no foreign key: it may be written first).
    held_summary = models.JSONField(default=dict, blank=True)
    summarised_in = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "recipient", "source"], name="notification_once_per_trigger"),
            # Digests and cap summaries have no rule, and NULLs never collide in the one above. Only
            # those kinds: a deleted rule's rows lose their rule too, and two deleted rules may
            # both have mailed one address for one scan.
            models.UniqueConstraint(
                fields=["recipient", "source"],
                condition=models.Q(rule__isnull=True, kind__in=["digest", "cap_summary"]),
                name="notification_once_per_ruleless_trigger",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="notification_recent"),
            models.Index(fields=["user", "-created_at"], name="notification_user_recent"),
            # A recipient's messages whatever the address's case: the history and the daily cap.
            models.Index(Lower("recipient"), F("created_at").desc(), name="notification_recipient_recent"),
            # "Was this episode already alerted?" (posture/alerts/timed.py), whoever received it.
            models.Index(fields=["rule", "source"], name="notification_rule_source"),
            # The watchdog's query: only rows still to be sent, or lost in the middle of a send.
            models.Index(
                fields=["state", "next_attempt_at"],
                name="notification_unfinished",
                condition=models.Q(state__in=["pending", "sending", "handing_over"]),
            ),
            # The cap's query: held rows not yet summarised to their recipient.
            models.Index(
                fields=["created_at"], name="notification_held_open", condition=models.Q(state="held", summarised_in__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} → {self.recipient} ({self.state})"

    def items(self) -> list[dict[str, Any]]:
        """What it reports: its trigger's items, or its own (digests, cap summaries, previews)."""
        return self.trigger.items if self.trigger_id is not None else self.changes


class AlertCursor(models.Model):
    """How far a scope's re-evaluations (change events without a scan) have been turned into
    notifications (posture/alerts/reevaluation.py): advanced in the transaction that writes them."""

    scope = models.OneToOneField("posture.Scope", on_delete=models.CASCADE, related_name="+")
    last_event_id = models.BigIntegerField(default=0, help_text="The last ChangeEvent id planned")

    def __str__(self) -> str:
        return f"alerts of scope {self.scope_id} up to event {self.last_event_id}"
