"""Celery tasks: thin, registered under the names in posture/task_queue.py, taking ids.

The work is in the steps of posture/scans/, which queue each other by name: this module is the
only one that imports the steps, and no module imports it (Celery finds it by autodiscovery).
"""

from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from posture import task_queue
from posture.alerts import delivery, outbox, reevaluation, tick
from posture.exports import jobs
from posture.feed import prune
from posture.models import Scan, Scope, WorkerHeartbeat
from posture.scans import batches, finish, start, watchdog
from posture.scans.evaluation import evaluate_scope
from posture.scans.request import scan_request


@shared_task(name=task_queue.START_SCAN)
def start_scan(scan_id: str) -> None:
    """Claim a pending scan, list its subscriptions and fan out one collect_batch per slice."""
    start.start_scan(scan_id)


@shared_task(name=task_queue.COLLECT_BATCH)
def collect_batch(batch_id: int) -> None:
    """Collect one subscription slice from Resource Graph and ARM and store it whole."""
    batches.collect_batch(batch_id)


@shared_task(name=task_queue.EVALUATE_BATCH)
def evaluate_batch(batch_id: int) -> None:
    """Evaluate a stored batch's clusters while the rest of the scan is still collecting."""
    finish.evaluate_batch(batch_id)


@shared_task(name=task_queue.FINISH_SCAN)
def finish_scan(scan_id: str) -> None:
    """Join the batches: mark removed clusters, evaluate, score and close the scan."""
    finish.finish_scan(scan_id)


@shared_task(name=task_queue.WATCHDOG)
def run_watchdog() -> dict[str, int]:
    """Re-queue work orphaned by dead workers or lost messages: scans, exports, then alerts."""
    return {**watchdog.watchdog(), **jobs.requeue_orphaned(), **outbox.requeue_orphaned()}


@shared_task(name=task_queue.EVALUATE_SCOPES)
def evaluate_scopes(scope_ids: list[int] | None = None) -> None:
    """Re-evaluate stored facts without calling Azure (after attestation, exception or catalog changes)."""
    for scope_id in scope_ids or list(Scope.objects.values_list("pk", flat=True)):
        evaluate_scope(scope_id)
        reevaluation.plan_after_run(scope_id)  # its regressions alert (posture/alerts/reevaluation.py)


@shared_task(name=task_queue.SCHEDULED_SCAN)
def scheduled_scan(scope_id: int) -> None:
    """Beat's entry point for a scope's schedule."""
    scope = Scope.objects.filter(pk=scope_id, enabled=True).first()
    if scope is not None:
        scan_request(scope=scope, trigger=Scan.Trigger.SCHEDULE)


@shared_task(name=task_queue.WORKER_HEARTBEAT, bind=True)
def worker_heartbeat(self, queue: str) -> None:  # type: ignore[no-untyped-def]
    """Record that a worker consuming `queue` is alive (beat sends one per queue)."""
    WorkerHeartbeat.objects.update_or_create(
        queue=queue[:64],
        defaults={"hostname": (self.request.hostname or socket.gethostname())[:255], "seen_at": timezone.now()},
    )


@shared_task(name=task_queue.BUILD_EXPORT)
def build_export(export_id: str) -> None:
    """Build a requested export into storage (posture/exports/jobs.py)."""
    jobs.build_export(export_id)


@shared_task(name=task_queue.EXPIRE_EXPORTS)
def expire_exports() -> int:
    """Beat's daily clean-up: expired export files and their rows, and the change feed's entries
    past ARC_FEED_RETENTION_DAYS."""
    expired = jobs.delete_expired()
    prune.prune()
    return expired


@shared_task(name=task_queue.SEND_NOTIFICATION)
def send_notification(notification_id: str) -> str:
    """Send one alert from the outbox (posture/alerts/delivery.py); a redelivery finds it claimed."""
    return delivery.send_notification(notification_id)


@shared_task(name=task_queue.SEND_NOTIFICATIONS)
def send_notifications(notification_ids: list[str]) -> list[str]:
    """Send a few alerts from the outbox, each claimed on its own (posture/alerts/delivery.py)."""
    return delivery.send_notifications(notification_ids)


@shared_task(name=task_queue.ALERT_TICK)
def alert_tick() -> dict[str, int]:
    """Beat's alert tick: time-based alerts, then the due daily digests and the daily cap's summaries."""
    return tick.alert_tick()
