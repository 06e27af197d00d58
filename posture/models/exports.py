"""The audit record of every export: who asked for what, with which filters, and what came out."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Export(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16)
    format = models.CharField(max_length=16)
    filters = models.JSONField(default=dict, blank=True)
    as_of = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Kept when the user is deleted, and the only name for exports from the command line (the OS user).
    requested_by_name = models.CharField(max_length=150, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    rows = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    file_name = models.CharField(max_length=500, blank=True, help_text="Path in storage; blank when the file went elsewhere (the CLI)")
    error = models.TextField(blank=True)
    # Built by the task (posture/exports/jobs.py): clusters done of all, for the progress bar.
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    # The running build's claim and liveness: the watchdog hands a build whose heartbeat went
    # stale to another worker, and only the holder of the latest claim may finish it.
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="export_user_recent"),
            models.Index(fields=["expires_at"], name="export_expiry", condition=models.Q(expires_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.format} ({self.state})"
