"""After the batches: each stored batch is evaluated early while others are still collected,
and once none is left to collect the scan is finished: removed clusters marked, every cluster
evaluated and scored under the scope's lock, the scan closed once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from posture.alerts.planning import plan_or_warn
from posture.evaluate.lock import ScopeBusy, evaluation_lock
from posture.feed import publish
from posture.models import Cluster, ControlResult, QueryEvidence, Scan, ScanBatch
from posture.scans.evaluation import CHUNK, RunStats, evaluate_scope
from posture.store import bulk
from posture.store.facts import data_problem_warnings, mark_removed
from posture.task_queue import FINISH_SCAN, enqueue, tasks_run_inline

log = logging.getLogger(__name__)


def collecting(scan_id: Any) -> bool:
    """Whether any batch of the scan is still to be collected."""
    return ScanBatch.objects.filter(scan_id=scan_id, state__in=(ScanBatch.State.PENDING, ScanBatch.State.RUNNING)).exists()


# --- a stored batch, evaluated early ----------------------------------------------------------
class EvaluationSuperseded(Exception):
    """Every batch is stored: the scan's final pass takes over this batch's evaluation."""


# Clusters a batch's evaluation checks between two looks at whether the final pass took over.
BATCH_EVALUATION_CHUNK = 500


def evaluate_batch(batch_id: int) -> None:
    """Evaluate one stored batch's clusters early, while the scan is still collecting; the
    scan's final evaluation then re-checks only clusters whose inputs changed since."""

    batch = ScanBatch.objects.select_related("scan").filter(pk=batch_id, state=ScanBatch.State.DONE).first()
    if batch is None or batch.scan.state != Scan.State.RUNNING:
        return  # gone, or the scan is finishing: its final evaluation covers these clusters

    def superseded() -> bool:
        return not collecting(batch.scan_id)

    if superseded():
        return
    try:
        evaluate_scan(batch.scan, subscriptions=list(batch.subscriptions), superseded=superseded)
    except EvaluationSuperseded:
        # Stopped between chunks, so the final pass need not wait: what was written stands, and
        # the pass re-checks the rest by their fingerprints.
        log.info("batch %s: evaluation left to the final pass", batch_id)


def evaluate_scan(
    scan: Scan, subscriptions: list[str] | None = None, *, superseded: Callable[[], bool] = lambda: False, lock: Any = None
) -> RunStats:
    """Evaluate the clusters of `subscriptions` (one stored batch, early), or every cluster of the
    scope with a fleet snapshot, keeping the scan's heartbeat going. A batch's evaluation raises
    EvaluationSuperseded between chunks once `superseded()`, and while it waits for the scope's
    lock (held by the batch before it, which stops as soon as the final pass wants the lock)."""

    def heartbeat() -> None:
        if superseded():
            raise EvaluationSuperseded
        Scan.objects.filter(pk=scan.pk).update(heartbeat_at=timezone.now())

    return evaluate_scope(
        scan.scope_id,
        scan=scan,
        subscriptions=subscriptions,
        heartbeat=heartbeat,
        defer_analyze=subscriptions is None,
        chunk=BATCH_EVALUATION_CHUNK if subscriptions is not None else CHUNK,
        lock=lock,
        waiting=heartbeat,
    )


# --- the scan's finish ------------------------------------------------------------------------
def maybe_finish(scan_id: Any) -> bool:
    """Enqueue the scan's finish once no batch is left to collect; True when it did."""
    if collecting(scan_id):
        return False
    enqueue(FINISH_SCAN, scan_id=str(scan_id))
    return True


# A finish that finds its scope busy tries again this much later instead of holding its worker.
FINISH_RETRY_SECONDS = 5
# How long a finish waits for the scope's evaluation lock before it leaves a retry behind.
FINISH_LOCK_WAIT_SECONDS = 2.0


def finish_scan(scan_id: str) -> None:
    """Close the scan once: under the scope's evaluation lock, so two finishers (a redelivered
    message, the watchdog's re-queue) never evaluate at once, and the second finds it done."""
    scan = Scan.objects.filter(pk=scan_id, state__in=(Scan.State.RUNNING, Scan.State.EVALUATING)).first()
    if scan is None:
        return
    # In-process tasks (the embedded default) have no queue to hold up, and a retry would recurse.
    wait = 1800 if tasks_run_inline() else FINISH_LOCK_WAIT_SECONDS
    try:
        with evaluation_lock(scan.scope_id, wait) as lock:
            _finish_locked(scan_id, lock)
    except ScopeBusy:
        if scan.state == Scan.State.EVALUATING:
            # Its finisher is alive and holds the lock (a dead one's lock went with its session);
            # should that lock belong to another evaluation, the watchdog re-queues the finish
            # once the scan's heartbeat is stale.
            return
        if collecting(scan_id):
            return  # its last batch finishes it
        log.info("scan %s: scope %s is being evaluated; finishing in %s s", scan_id, scan.scope_id, FINISH_RETRY_SECONDS)
        enqueue(FINISH_SCAN, scan_id=str(scan_id), countdown=FINISH_RETRY_SECONDS)


def _finish_locked(scan_id: str, lock: Any) -> None:
    now = timezone.now()
    # EVALUATING too: a finisher that died mid-way left it so, and its lock went with it.
    if not Scan.objects.filter(pk=scan_id, state__in=(Scan.State.RUNNING, Scan.State.EVALUATING)).update(
        state=Scan.State.EVALUATING, heartbeat_at=now
    ):
        return  # finished by an earlier finisher
    scan = Scan.objects.select_related("scope").get(pk=scan_id)
    batches = list(ScanBatch.objects.filter(scan=scan).values_list("state", "subscriptions", "error"))
    if any(state in (ScanBatch.State.PENDING, ScanBatch.State.RUNNING) for state, _, _ in batches):
        Scan.objects.filter(pk=scan.pk).update(state=Scan.State.RUNNING)  # finished too early
        return
    failed = [error for state, _, error in batches if state == ScanBatch.State.FAILED]
    done_subscriptions = [subs for state, subs, _ in batches if state == ScanBatch.State.DONE]
    done = len(done_subscriptions)
    removed = 0
    if done and not failed:
        removed = mark_removed(scan, {sub for subs in done_subscriptions for sub in subs}, now)
    warnings = _unscanned_subscriptions(scan, {sub for _, subs, _ in batches for sub in subs})
    evaluation = evaluate_scan(scan, lock=lock)
    prune_evidence(scan.scope_id)
    # Refused rows: some facts could not be refreshed, and unknown never counts as a pass.
    refused = data_problem_warnings(scan)
    warnings += refused
    state = Scan.State.SUCCEEDED if done and not failed and not refused else Scan.State.PARTIAL if done else Scan.State.FAILED
    error = ""
    if failed:
        unique = list(dict.fromkeys(failed))
        error = f"{len(failed)} of {len(failed) + done} batches failed: " + " | ".join(unique[:5])
    with transaction.atomic():
        if Scan.objects.filter(pk=scan.pk, state=Scan.State.EVALUATING).update(
            state=state, finished_at=timezone.now(), error=error[:4000], clusters_removed=removed, warnings=warnings
        ):
            # Its change events are final only now (posture/alerts/planning.py).
            scan.refresh_from_db(fields=["state", "error", "quota_wait_seconds", "finished_at"])
            plan_or_warn(scan, warnings)
            publish.publish_scan(scan)  # last: it holds the feed's lock until the commit
    if evaluation.analyze_deferred:  # housekeeping for later queries; the results are out already
        bulk.analyze(ControlResult, Cluster)


def _unscanned_subscriptions(scan: Scan, attempted: set[str]) -> list[str]:
    """Subscriptions whose clusters this scan could not refresh, said out loud."""
    # order_by(): the default ordering by name would join the DISTINCT and return every row.
    held = set(
        Cluster.objects.filter(scope_id=scan.scope_id, removed_at__isnull=True)
        .order_by()
        .values_list("subscription_id", flat=True)
        .distinct()
    )
    vanished = sorted(held - attempted)
    if not vanished:
        return []
    listed = ", ".join(vanished[:10]) + (" …" if len(vanished) > 10 else "")
    return [
        f"{len(vanished)} subscription(s) holding clusters were not listed by this scan (access lost, or moved out of the "
        f"scope): {listed}. Their clusters keep their last data and are not marked removed."
    ]


def prune_evidence(scope_id: int) -> None:
    keep = list(
        Scan.objects.filter(scope_id=scope_id).order_by("-created_at").values_list("pk", flat=True)[: settings.ARC_EVIDENCE_KEEP_SCANS]
    )
    QueryEvidence.objects.filter(batch__scan__scope_id=scope_id).exclude(batch__scan_id__in=keep).delete()
