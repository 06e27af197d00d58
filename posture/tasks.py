"""Celery tasks: named, thin, taking ids. The work is in plain functions (pipeline.py etc.)."""

from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from posture.scans import pipeline


@shared_task(name="posture.start_scan")
def start_scan(scan_id: str) -> None:
    """Claim a pending scan, list its subscriptions and fan out one collect_batch per slice."""
    pipeline.start_scan(scan_id)


@shared_task(name="posture.collect_batch")
def collect_batch(batch_id: int) -> None:
    """Collect one subscription slice from Resource Graph and ARM and store it whole."""
    pipeline.collect_batch(batch_id)


@shared_task(name="posture.evaluate_batch")
def evaluate_batch(batch_id: int) -> None:
    """Evaluate a stored batch's clusters while the rest of the scan is still collecting."""
    pipeline.evaluate_batch(batch_id)


@shared_task(name="posture.finish_scan")
def finish_scan(scan_id: str) -> None:
    """Join the batches: mark removed clusters, evaluate, score and close the scan."""
    pipeline.finish_scan(scan_id)


@shared_task(name="posture.watchdog")
def watchdog() -> dict[str, int]:
    """Re-queue work orphaned by dead workers or lost messages."""
    return pipeline.watchdog()


@shared_task(name="posture.evaluate_scopes")
def evaluate_scopes(scope_ids: list[int] | None = None) -> None:
    """Re-evaluate stored facts without calling Azure (after attestation, exception or catalog changes)."""
    from posture.models import Scope
    from posture.scans.evaluation import evaluate_scope

    for scope_id in scope_ids or list(Scope.objects.values_list("pk", flat=True)):
        evaluate_scope(scope_id)


@shared_task(name="posture.scheduled_scan")
def scheduled_scan(scope_id: int) -> None:
    """Beat's entry point for a scope's schedule."""
    from posture.models import Scan, Scope
    from posture.scans.request import scan_request

    scope = Scope.objects.filter(pk=scope_id, enabled=True).first()
    if scope is not None:
        scan_request(scope=scope, trigger=Scan.Trigger.SCHEDULE)


@shared_task(name="posture.worker_heartbeat", bind=True)
def worker_heartbeat(self, queue: str) -> None:  # type: ignore[no-untyped-def]
    """Record that a worker consuming `queue` is alive (beat sends one per queue)."""
    from posture.models import WorkerHeartbeat

    WorkerHeartbeat.objects.update_or_create(
        queue=queue[:64],
        defaults={"hostname": (self.request.hostname or socket.gethostname())[:255], "seen_at": timezone.now()},
    )
