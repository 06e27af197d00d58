"""One batch of a scan: claim it, collect its subscriptions (posture/scans/sweep.py), store the
whole batch at once, then hand it over (posture/scans/finish.py). A failed attempt is retried,
a refused batch is split in halves, and a batch that cannot succeed is failed.

A batch's `claim` changes on every attempt: a late attempt whose worker was presumed dead
cannot complete a batch another attempt has taken over.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from posture.collect.client import AzureSession
from posture.collect.errors import AzureError, ForbiddenError
from posture.heartbeat import heartbeat_thread
from posture.models import AzureResource, Cluster, QueryEvidence, Scan, ScanBatch
from posture.models.scans import counters_added, counters_zeroed
from posture.scans.finish import collecting, finish_scan, maybe_finish
from posture.scans.sweep import collect_batch_data
from posture.store import bulk
from posture.store.facts import store_batch
from posture.task_queue import COLLECT_BATCH, EVALUATE_BATCH, enqueue

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """Another attempt took this batch over (this worker was presumed dead)."""


def enqueue_batches(batch_ids: list[int]) -> None:
    for batch_id in batch_ids:
        enqueue(COLLECT_BATCH, batch_id=batch_id)


class BatchCounters:
    """Counts what a batch did and writes it (and the heartbeat) at a throttled rate.

    `tick` may be called from ARM threads; only the task's own thread writes to the database.
    """

    def __init__(self, batch: ScanBatch, claim: uuid.UUID, session_stats: Any) -> None:
        self.batch, self.claim, self.stats = batch, claim, session_stats
        self.pages = self.rows = 0
        self._owner = threading.get_ident()
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def page(self, rows: int) -> None:
        with self._lock:  # query streams report from their own threads
            self.pages += 1 if rows else 0
            self.rows += rows
        self.tick()

    def tick(self) -> None:
        if threading.get_ident() != self._owner:
            return
        if time.monotonic() - self._last >= settings.ARC_PROGRESS_INTERVAL_SECONDS:
            self.flush()

    def counters(self) -> dict[str, Any]:
        return {
            "requests": self.stats.requests,
            "pages": self.pages,
            "rows": self.rows,
            "throttled": self.stats.throttled,
            "quota_wait_seconds": round(self.stats.quota_wait_seconds, 3),
        }

    def flush(self) -> None:
        now = timezone.now()
        self._last = time.monotonic()
        ScanBatch.objects.filter(pk=self.batch.pk, claim=self.claim).update(heartbeat_at=now, **self.counters())
        Scan.objects.filter(pk=self.batch.scan_id).update(heartbeat_at=now)

    def pulse(self) -> AbstractContextManager[None]:
        """Beat from a thread of its own while the batch runs (see `heartbeat_thread`)."""
        return heartbeat_thread(self._beat, name=f"batch-{self.batch.pk}-heartbeat")

    def _beat(self) -> None:
        now = timezone.now()
        ScanBatch.objects.filter(pk=self.batch.pk, claim=self.claim, state=ScanBatch.State.RUNNING).update(heartbeat_at=now)
        Scan.objects.filter(pk=self.batch.scan_id, state=Scan.State.RUNNING).update(heartbeat_at=now)


def collect_batch(batch_id: int) -> None:
    now = timezone.now()
    claim = uuid.uuid4()
    stale = now - timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS)
    claimed = (
        ScanBatch.objects.filter(pk=batch_id)
        .filter(Q(state=ScanBatch.State.PENDING) | Q(state=ScanBatch.State.RUNNING, heartbeat_at__lt=stale))
        .update(
            state=ScanBatch.State.RUNNING,
            claim=claim,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            error="",
            **counters_zeroed(),
        )
    )
    if not claimed:
        return
    batch = ScanBatch.objects.select_related("scan__scope").get(pk=batch_id)
    if batch.scan.state != Scan.State.RUNNING:
        end_batch(batch, claim, ScanBatch.State.FAILED, f"scan is {batch.scan.state}")
        return
    # The oldest batch has the quota first: batches finish collecting one after another.
    try:
        session = AzureSession(batch.scan.scope, priority=batch.pk)
    except AzureError as exc:
        _retry_or_fail(batch, claim, exc.message, permanent=exc.permanent)
        return
    progress = BatchCounters(batch, claim, session.stats)
    session.on_request = progress.tick
    with progress.pulse():
        try:
            data = collect_batch_data(session, list(batch.subscriptions), on_page=progress.page)
        except ForbiddenError as exc:
            _split_or_fail(batch, claim, exc)
            return
        except AzureError as exc:
            _retry_or_fail(batch, claim, exc.message, permanent=exc.permanent)
            return
        except SoftTimeLimitExceeded:
            _retry_or_fail(batch, claim, "the batch ran past its time limit", permanent=False)
            return
        finally:
            session.close()
        try:
            written = _save_batch(batch, claim, data, progress)
        except ClaimLost:
            log.warning("batch %s was taken over by another attempt; discarding this one", batch_id)
            return
    transaction.on_commit(lambda: _hand_over(batch))
    # After the hand-over, so the batch's evaluation does not wait for it; the next batch's
    # writes are planned with the new statistics.
    if written >= bulk.ANALYZE_AFTER_ROWS:
        bulk.analyze(Cluster, AzureResource)


def _hand_over(batch: ScanBatch) -> None:
    if collecting(batch.scan_id):
        # Evaluated by the default queue's workers while collect workers take the next batch.
        enqueue(EVALUATE_BATCH, batch_id=batch.pk)
    else:
        # The last batch: its worker, free now, finishes the scan itself instead of queueing the
        # finish behind batch evaluations. The final pass evaluates this batch with the others.
        finish_scan(str(batch.scan_id))


def _save_batch(batch: ScanBatch, claim: uuid.UUID, data: Any, progress: BatchCounters) -> int:
    """Store the batch if its claim still holds; returns how many rows were written."""
    now = timezone.now()
    counters = progress.counters()
    with transaction.atomic():
        if not ScanBatch.objects.filter(pk=batch.pk, claim=claim, state=ScanBatch.State.RUNNING).update(
            state=ScanBatch.State.DONE, finished_at=now, heartbeat_at=now, clusters=data.cluster_count, **counters
        ):
            raise ClaimLost
        scan = batch.scan
        written = store_batch(data, scan, now)
        for evidence in data.evidence:
            evidence.batch = batch
        QueryEvidence.objects.bulk_create(data.evidence)
        ScanBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now())  # stored, not only collected
        Scan.objects.filter(pk=scan.pk).update(
            batches_done=F("batches_done") + 1,
            heartbeat_at=now,
            **counters_added({**counters, "clusters": data.cluster_count}),
        )
    return written


def end_batch(batch: ScanBatch, claim: uuid.UUID, state: str, error: str) -> bool:
    """End the batch's attempt `claim` as `state`; the scan finishes once no batch is left."""
    with transaction.atomic():
        ended = ScanBatch.objects.filter(pk=batch.pk, claim=claim, state=ScanBatch.State.RUNNING).update(
            state=state, error=error[:4000], finished_at=timezone.now()
        )
        if ended and state == ScanBatch.State.FAILED:
            Scan.objects.filter(pk=batch.scan_id).update(batches_failed=F("batches_failed") + 1)
    if ended:
        transaction.on_commit(lambda: maybe_finish(batch.scan_id))
    return bool(ended)


def _retry_or_fail(batch: ScanBatch, claim: uuid.UUID, message: str, *, permanent: bool) -> None:
    if permanent or batch.attempts >= settings.ARC_BATCH_MAX_ATTEMPTS:
        end_batch(batch, claim, ScanBatch.State.FAILED, message)
        return
    countdown = min(300, 15 * 2 ** (batch.attempts - 1))
    requeued = ScanBatch.objects.filter(pk=batch.pk, claim=claim, state=ScanBatch.State.RUNNING).update(
        state=ScanBatch.State.PENDING,
        claim=None,
        error=f"attempt {batch.attempts} failed: {message}"[:4000],
        queued_at=timezone.now(),
    )
    if requeued:
        log.info("batch %s will retry in %s s: %s", batch.pk, countdown, message)
        transaction.on_commit(lambda: enqueue(COLLECT_BATCH, batch_id=batch.pk, countdown=countdown))


def _split_or_fail(batch: ScanBatch, claim: uuid.UUID, exc: ForbiddenError) -> None:
    """A 403 names no subscription reliably: halve the batch until the refused ones stand alone,
    so every readable subscription is still scanned."""
    subs = list(batch.subscriptions)
    if len(subs) == 1:
        end_batch(batch, claim, ScanBatch.State.FAILED, exc.message)
        return
    with transaction.atomic():
        if not ScanBatch.objects.filter(pk=batch.pk, claim=claim, state=ScanBatch.State.RUNNING).update(
            state=ScanBatch.State.SPLIT, finished_at=timezone.now(), error=exc.message[:4000]
        ):
            return
        scan = Scan.objects.select_for_update().get(pk=batch.scan_id)
        last = ScanBatch.objects.filter(scan=scan).order_by("-number").values_list("number", flat=True).first() or 0
        half = len(subs) // 2
        children = [
            ScanBatch.objects.create(scan=scan, parent=batch, number=last + n, subscriptions=part, queued_at=timezone.now())
            for n, part in enumerate((subs[:half], subs[half:]), start=1)
        ]
        Scan.objects.filter(pk=scan.pk).update(batches_total=F("batches_total") + 1)
        ids = [c.pk for c in children]
        transaction.on_commit(lambda: enqueue_batches(ids))
