"""The change feed's record (posture/feed): every published change, numbered in the order it
became visible, and how far the feed has been pruned."""

from __future__ import annotations

from django.db import models

from posture.models.results import Status


class FeedEntry(models.Model):
    """One change as published to the feed: a copy of what it shows, so that a later rewrite of
    its ChangeEvent (a retarget within a scan, a deleted scan or cluster, a renamed cluster)
    changes nothing a client has already read. Ids are plain numbers for the same reason.

    `seq` is the cursor: rows are only ever appended, under the feed's publication lock, so a
    larger seq never becomes visible before a smaller one (posture/feed/publish.py)."""

    seq = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(help_text="When the status changed (the evaluation's time)")
    cluster_id = models.BigIntegerField()
    cluster_name = models.CharField(max_length=260)
    resource_id = models.CharField(max_length=1024, help_text="The cluster's Azure resource id")
    scope_id = models.BigIntegerField(null=True)
    scope_name = models.CharField(max_length=63)
    control = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, choices=Status.choices)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    scan_id = models.UUIDField(null=True, blank=True)

    class Meta:
        # The primary key is the only index: readers page by seq, pruning cuts a prefix of it.
        verbose_name_plural = "feed entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.control}: {self.from_status} → {self.to_status}"


class FeedHorizon(models.Model):
    """One row: the largest seq pruned so far. A cursor below it may have missed pruned entries
    (410); kept apart from the entries so that it survives a prune that empties the feed."""

    pruned_through = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"feed pruned through #{self.pruned_through}"
