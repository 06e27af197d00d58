from __future__ import annotations

import re
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F

from posture.clouds import DEFAULT_CLOUD, cloud_choices, credential_names, get_cloud
from posture.cron import cron_problem

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Tenant: a GUID or a verified domain (contoso.onmicrosoft.com).
TENANT_RE = re.compile(r"^(?:[0-9a-fA-F-]{36}|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+)$")
# Management group ids: letters, digits, - _ . ( ), at most 90 characters (ARM naming rules).
MANAGEMENT_GROUP_RE = re.compile(r"^[A-Za-z0-9_.()-]{1,90}$")


def validate_guid(value: str) -> None:
    if not GUID_RE.match(value or ""):
        raise ValidationError(f"{value!r} is not a GUID such as 00000000-0000-0000-0000-000000000000")


def validate_cron(value: str) -> None:
    """Accepts exactly what celery beat can run (see posture.cron.cron_problem)."""
    if problem := cron_problem(value):
        raise ValidationError(f"{value!r} is not a cron schedule beat can run: {problem}.")


class Scope(models.Model):
    """An Azure tenant and cloud, and the subscriptions and/or management groups to scan in it.

    Neither credentials nor endpoints are stored here: `cloud` and `credential` are names the
    operator defines in the environment (posture/clouds.py).
    """

    name = models.SlugField(max_length=63, unique=True)
    tenant_id = models.CharField(max_length=253)
    cloud = models.CharField(max_length=32, default=DEFAULT_CLOUD, help_text="An Azure cloud or one the operator defined (ARC_CLOUDS)")
    credential = models.SlugField(max_length=40, blank=True, help_text="Names the AZURE_<NAME>_* environment variables; empty = AZURE_*")
    subscriptions = models.JSONField(default=list, blank=True)
    management_groups = models.JSONField(default=list, blank=True)
    schedule = models.CharField(max_length=100, default="0 */6 * * *", validators=[validate_cron])
    enabled = models.BooleanField(default=True)
    # Claimed while an evaluation of the scope runs (see posture/evaluate/lock.py).
    evaluation_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not TENANT_RE.match(self.tenant_id or ""):
            raise ValidationError({"tenant_id": "Enter the tenant GUID or its domain name."})
        self.subscriptions = sorted({str(s).strip().lower() for s in self.subscriptions or []})
        for sub in self.subscriptions:
            validate_guid(sub)
        for mg in self.management_groups or []:
            if not MANAGEMENT_GROUP_RE.match(str(mg)):
                raise ValidationError({"management_groups": f"{mg!r} is not a management group id."})
        if get_cloud(self.cloud) is None:
            names = ", ".join(n for n, _ in cloud_choices())
            raise ValidationError({"cloud": f"Choose an Azure cloud or one the operator defined: {names}."})
        if self.credential not in credential_names():
            names = ", ".join(n for n in credential_names() if n) or "none"
            raise ValidationError({"credential": f"Choose the default credential or one the operator defined (ARC_CREDENTIALS: {names})."})

    @property
    def cloud_label(self) -> str:
        cloud = get_cloud(self.cloud)
        return cloud.label if cloud else f"{self.cloud} (not defined: choose another cloud)"

    @property
    def scope_label(self) -> str:
        if self.subscriptions:
            return f"{len(self.subscriptions)} subscription(s)"
        if self.management_groups:
            return f"{len(self.management_groups)} management group(s)"
        return "whole tenant"


COUNTERS = ("requests", "pages", "rows", "clusters", "throttled", "quota_wait_seconds")


class ScanCounters(models.Model):
    """What collecting cost and found: live on a batch while it runs, added to its scan's (with
    the subscription listing's) when the batch is stored, by `counters_added`."""

    requests = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    clusters = models.PositiveIntegerField(default=0)
    throttled = models.PositiveIntegerField(default=0)
    quota_wait_seconds = models.FloatField(default=0.0)

    class Meta:
        abstract = True


def counters_added(counts: dict[str, float]) -> dict[str, Any]:
    """`update()` arguments adding `counts` (some of COUNTERS) to a row's counters in the database."""
    if unknown := set(counts) - set(COUNTERS):
        raise ValueError(f"not a scan counter: {sorted(unknown)}")
    return {name: F(name) + value for name, value in counts.items()}


def counters_zeroed() -> dict[str, int]:
    """`update()` arguments setting every counter back to zero."""
    return dict.fromkeys(COUNTERS, 0)


class Scan(ScanCounters):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"  # collecting subscription batches
        EVALUATING = "evaluating"  # every batch finished; joining, evaluating and scoring
        SUCCEEDED = "succeeded"
        PARTIAL = "partial"  # some batches failed; their last good data stays in place
        FAILED = "failed"

    FINISHED_STATES = (State.SUCCEEDED, State.PARTIAL, State.FAILED)
    ACTIVE_STATES = (State.PENDING, State.RUNNING, State.EVALUATING)

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        COMMAND = "command"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="scans")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # Its alerts could not be planned when it closed: the alert tick plans them again
    # (posture/alerts/planning.py retry_scan_alerts), so a planning failure loses nothing.
    alerts_pending = models.BooleanField(default=False)
    # Progress, as each batch finishes; its counters (ScanCounters) are summed from the batches.
    subscriptions = models.PositiveIntegerField(default=0)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    batches_failed = models.PositiveIntegerField(default=0)
    clusters_removed = models.PositiveIntegerField(default=0)
    # Resource Graph rows refused as damaged: {"rows": n, "clusters": n, "resources": n,
    # "examples": [{query, id, field, issue}]}. Any makes the scan partial.
    data_problems = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The watchdog and "is a scan already running" look only at unfinished scans.
            models.Index(
                fields=["scope", "state"],
                name="scan_unfinished",
                condition=models.Q(state__in=["pending", "running", "evaluating"]),
            ),
            models.Index(fields=["scope", "-created_at"], name="scan_scope_recent"),
        ]

    def __str__(self) -> str:
        return f"scan {self.id} of {self.scope_id} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES

    @property
    def is_complete(self) -> bool:
        """Every batch succeeded: only such a scan may mark unseen clusters removed."""
        return self.state == self.State.SUCCEEDED

    @property
    def duration(self):  # type: ignore[no-untyped-def]
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class ScanBatch(ScanCounters):
    """One slice of a scan's subscriptions, collected by one `collect_batch` task.

    A batch is written all at once or not at all, so a failed batch leaves the last good data
    of its subscriptions in place. `claim` changes on every attempt: a late attempt whose worker
    was presumed dead cannot complete a batch another attempt has taken over.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        SPLIT = "split"  # refused for some subscriptions; retried as two halves

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="batches")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    subscriptions = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    claim = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["scan", "number"]
        constraints = [models.UniqueConstraint(fields=["scan", "number"], name="batch_number_unique")]
        indexes = [
            models.Index(
                fields=["state", "heartbeat_at"],
                name="batch_unfinished",
                condition=models.Q(state__in=["pending", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"batch {self.number} of {self.scan_id} ({self.state})"


class QueryEvidence(models.Model):
    """What one batch asked Azure and exactly what came back, for auditors.

    `raw` is the gzip of every response body received, one per line, as sent by Azure;
    `sha256` is the digest of those uncompressed bytes.
    """

    batch = models.ForeignKey(ScanBatch, on_delete=models.CASCADE, related_name="evidence")
    name = models.CharField(max_length=64)
    request = models.TextField(help_text="The KQL query, or the ARM request path template")
    api_version = models.CharField(max_length=32)
    scopes = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    request_ids = models.JSONField(default=list)
    sha256 = models.CharField(max_length=64)
    raw = models.BinaryField()

    class Meta:
        ordering = ["batch", "name"]

    def __str__(self) -> str:
        return f"{self.name} of {self.batch}"
