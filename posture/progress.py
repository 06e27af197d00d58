"""Scan progress as the UI and the `scan --wait` command read it: finished batches' totals on
the scan row plus the live counters of batches still running."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Sum

from posture.models import Scan, ScanBatch


@dataclass(frozen=True)
class ScanProgress:
    state: str
    batches_total: int
    batches_finished: int
    requests: int
    pages: int
    rows: int
    clusters: int
    throttled: int
    quota_wait_seconds: float

    @property
    def fraction(self) -> float:
        if self.state in Scan.FINISHED_STATES:
            return 1.0
        return self.batches_finished / self.batches_total if self.batches_total else 0.0


def scan_progress(scan_id: object) -> ScanProgress:
    scan = Scan.objects.get(pk=scan_id)
    live = ScanBatch.objects.filter(scan_id=scan_id, state=ScanBatch.State.RUNNING).aggregate(
        requests=Sum("requests"),
        pages=Sum("pages"),
        rows=Sum("rows"),
        throttled=Sum("throttled"),
        quota_wait_seconds=Sum("quota_wait_seconds"),
    )
    return ScanProgress(
        state=scan.state,
        batches_total=scan.batches_total,
        batches_finished=scan.batches_done + scan.batches_failed,
        requests=scan.requests + (live["requests"] or 0),
        pages=scan.pages + (live["pages"] or 0),
        rows=scan.rows + (live["rows"] or 0),
        clusters=scan.clusters,
        throttled=scan.throttled + (live["throttled"] or 0),
        quota_wait_seconds=scan.quota_wait_seconds + (live["quota_wait_seconds"] or 0.0),
    )
