"""The watchdog, run by beat: work orphaned by dead workers or lost messages is handed out again.

Only work whose heartbeat went stale is touched; every step it re-queues claims its work again,
so a re-queue that races the original message does nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from posture.governance import scopes_needing_evaluation
from posture.models import Scan, ScanBatch
from posture.scans.batches import end_batch, enqueue_batches
from posture.task_queue import EVALUATE_SCOPES, FINISH_SCAN, START_SCAN, enqueue


def watchdog() -> dict[str, int]:
    """Find work orphaned by dead workers or lost messages and hand it out again."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS)
    counts = {"batches_requeued": 0, "batches_failed": 0, "scans_restarted": 0, "scans_finished": 0}
    for batch in ScanBatch.objects.filter(
        Q(state=ScanBatch.State.RUNNING, heartbeat_at__lt=stale) | Q(state=ScanBatch.State.PENDING, queued_at__lt=stale),
        scan__state=Scan.State.RUNNING,
    ):
        if batch.state == ScanBatch.State.RUNNING and batch.attempts >= settings.ARC_BATCH_MAX_ATTEMPTS:
            counts["batches_failed"] += end_batch(
                batch, batch.claim, ScanBatch.State.FAILED, f"worker lost {batch.attempts} times; giving up"
            )
            continue
        if ScanBatch.objects.filter(pk=batch.pk, state=batch.state, heartbeat_at=batch.heartbeat_at, queued_at=batch.queued_at).update(
            state=ScanBatch.State.PENDING, claim=None, queued_at=now
        ):
            counts["batches_requeued"] += 1
            enqueue_batches([batch.pk])
    for scan in Scan.objects.filter(state=Scan.State.PENDING, created_at__lt=stale):
        counts["scans_restarted"] += 1
        enqueue(START_SCAN, scan_id=str(scan.pk))
    for scan in Scan.objects.filter(state=Scan.State.RUNNING, heartbeat_at__lt=stale):
        if not scan.batches.exists():  # its start died after claiming: start it over
            if Scan.objects.filter(pk=scan.pk, state=Scan.State.RUNNING, heartbeat_at=scan.heartbeat_at).update(state=Scan.State.PENDING):
                counts["scans_restarted"] += 1
                enqueue(START_SCAN, scan_id=str(scan.pk))
        elif not scan.batches.filter(state__in=[ScanBatch.State.PENDING, ScanBatch.State.RUNNING]).exists():
            counts["scans_finished"] += 1
            enqueue(FINISH_SCAN, scan_id=str(scan.pk))
    for scan in Scan.objects.filter(state=Scan.State.EVALUATING, heartbeat_at__lt=stale):
        counts["scans_finished"] += 1
        enqueue(FINISH_SCAN, scan_id=str(scan.pk))
    due = [pk for pk in scopes_needing_evaluation(now) if not Scan.objects.filter(scope_id=pk, state__in=Scan.ACTIVE_STATES).exists()]
    if due:
        enqueue(EVALUATE_SCOPES, scope_ids=due)
    counts["scopes_reevaluated"] = len(due)
    return counts
