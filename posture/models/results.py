from __future__ import annotations

from django.db import models


class Status(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    UNKNOWN = "unknown", "Unknown"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    ATTESTED = "attested", "Attested"
    EXCEPTED = "excepted", "Excepted"


class Reason(models.TextChoices):
    EVIDENCE = "evidence", "Evidenced by Azure data"
    DATA_MISSING = "data_missing", "Data missing"
    STALE = "stale", "Stale: the cluster is not connected"
    NOT_VISIBLE = "not_visible", "Not visible in Azure Resource Graph"
    UNKNOWN_VALUE = "unknown_value", "Unknown value"
    IN_PROGRESS = "in_progress", "Change in progress"
    DEPENDS = "depends", "Depends on another control"
    ATTESTATION = "attestation", "Attested by an analyst"
    EXCEPTION = "exception", "Risk accepted by an exception"


class ControlResult(models.Model):
    """The current verdict of one control on one cluster. Rewritten only when it changes."""

    # Indexes are few on purpose: every evaluation writes these rows by the hundred thousand.
    # cluster_id is served by the unique (cluster, control) index.
    cluster = models.ForeignKey("posture.Cluster", on_delete=models.CASCADE, related_name="results", db_index=False)
    control = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices)
    # The verdict from Azure data alone, before attestations and exceptions.
    raw_status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    attestation = models.ForeignKey(
        "posture.Attestation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    exception = models.ForeignKey(
        "posture.RiskException", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    since = models.DateTimeField(help_text="When the status became what it is")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cluster", "control"], name="result_cluster_control")]
        indexes = [
            models.Index(fields=["control", "status"], name="result_control_status"),
            # Only the few results that an attestation or exception covers are indexed by it.
            models.Index(fields=["attestation"], name="result_attestation", condition=models.Q(attestation__isnull=False)),
            models.Index(fields=["exception"], name="result_exception", condition=models.Q(exception__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.control} on {self.cluster_id}: {self.status}"


class ChangeEvent(models.Model):
    """Drift: a control's status changed on a cluster."""

    cluster = models.ForeignKey("posture.Cluster", on_delete=models.CASCADE, related_name="changes")
    control = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, choices=Status.choices)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["cluster", "-at"], name="change_cluster_recent"),
            models.Index(fields=["-at"], name="change_recent"),
            models.Index(fields=["scan"], name="change_scan"),
        ]

    def __str__(self) -> str:
        return f"{self.control}: {self.from_status} → {self.to_status}"


class VerdictHistory(models.Model):
    """A verdict as it stood until `replaced_at`, kept when the evaluation rewrote it (any field
    of the result row, not only its status), so a past posture can be rebuilt whole
    (posture/exports/history.py). Kept apart from ChangeEvent, which means drift (a status
    change) to the pages and summaries that count it. Governance ids are plain numbers: the
    record keeps what was cited, and deleting an attestation needs no scan of this table."""

    cluster = models.ForeignKey("posture.Cluster", on_delete=models.CASCADE, related_name="+", db_index=False)
    control = models.CharField(max_length=32)
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    replaced_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices)
    raw_status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    attestation_id = models.BigIntegerField(null=True, blank=True)
    exception_id = models.BigIntegerField(null=True, blank=True)
    since = models.DateTimeField()

    class Meta:
        # The one index: a chunk of clusters' first replacement after a date.
        indexes = [models.Index(fields=["cluster", "control", "replaced_at"], name="verdict_history_key")]

    def __str__(self) -> str:
        return f"{self.control} on {self.cluster_id}: {self.status} until {self.replaced_at:%Y-%m-%d %H:%M}"


class ScoreHistory(models.Model):
    """A cluster's score, grade and coverage, recorded whenever one of them changes."""

    cluster = models.ForeignKey("posture.Cluster", on_delete=models.CASCADE, related_name="score_history")
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    score = models.FloatField(null=True)
    grade = models.CharField(max_length=2)
    coverage = models.FloatField(null=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["cluster", "-at"], name="score_cluster_recent")]

    def __str__(self) -> str:
        return f"{self.grade} ({self.score}) at {self.at:%Y-%m-%d %H:%M}"


class FleetSnapshot(models.Model):
    """Aggregates of one evaluation run of a scope, computed once so pages never aggregate
    raw results at request time."""

    scope = models.ForeignKey("posture.Scope", on_delete=models.CASCADE, related_name="snapshots")
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots")
    created_at = models.DateTimeField()
    clusters = models.PositiveIntegerField(default=0)
    score = models.FloatField(null=True)
    coverage = models.FloatField(null=True)
    grades = models.JSONField(default=dict)
    controls = models.JSONField(default=dict, help_text="control -> status -> clusters")
    sections = models.JSONField(default=dict, help_text="framework -> section -> status -> clusters")
    paths = models.JSONField(default=dict)
    connectivity = models.JSONField(default=dict)
    changes = models.JSONField(default=dict, help_text="what changed in this run")
    catalog_version = models.CharField(max_length=32)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        indexes = [models.Index(fields=["scope", "-created_at"], name="snapshot_scope_recent")]
        # A scan's finish may run twice (a redelivered message, a take-over after a dead worker):
        # its snapshot is written once.
        constraints = [models.UniqueConstraint(fields=["scan"], condition=models.Q(scan__isnull=False), name="one_snapshot_per_scan")]

    def __str__(self) -> str:
        return f"snapshot of {self.scope_id} at {self.created_at:%Y-%m-%d %H:%M}"
