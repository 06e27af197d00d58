"""The scan pipeline: start → one batch per subscription slice → finish, plus the watchdog.

Every step takes ids, re-reads state and claims its work with a conditional UPDATE, so a
message delivered twice, late, or to a second worker does nothing the second time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from posture.collect.client import AzureSession
from posture.collect.errors import AzureError, ForbiddenError
from posture.collect.queries import SUBSCRIPTIONS
from posture.governance import scopes_needing_evaluation
from posture.heartbeat import heartbeat_thread
from posture.models import AzureResource, Cluster, ControlResult, QueryEvidence, Scan, ScanBatch, Scope, Subscription
from posture.scans.sweep import collect_batch_data
from posture.store import bulk
from posture.store import facts as store

if TYPE_CHECKING:
    from posture.scans.evaluation import RunStats

log = logging.getLogger(__name__)


class ClaimLost(Exception):
    """Another attempt took this batch over (this worker was presumed dead)."""


# --- start -----------------------------------------------------------------------------------
def start_scan(scan_id: str) -> None:
    now = timezone.now()
    if not Scan.objects.filter(pk=scan_id, state=Scan.State.PENDING).update(state=Scan.State.RUNNING, started_at=now, heartbeat_at=now):
        return  # already started by another worker, or finished
    scan = Scan.objects.select_related("scope").get(pk=scan_id)
    try:
        session = AzureSession(scan.scope)
    except AzureError as exc:  # a cloud or credential name the operator does not define: no Azure call
        _fail_scan(scan, f"Could not scan scope {scan.scope.name}: {exc}")
        return
    try:
        # Listing may wait out throttling far longer than the watchdog's stale limit.
        with heartbeat_thread(lambda: _beat_scan(scan.pk), name=f"scan-{scan.pk}-start"):
            subscriptions = list_subscriptions(session, scan.scope)
    except AzureError as exc:
        _fail_scan(scan, f"Could not list the subscriptions of scope {scan.scope.name}: {exc}")
        return
    finally:
        session.close()
    if not subscriptions:
        _fail_scan(scan, f"The scanning identity can read no subscription in scope {scan.scope.name}.")
        return
    with transaction.atomic():
        batches = ScanBatch.objects.bulk_create(
            ScanBatch(scan=scan, number=n, subscriptions=part, queued_at=now)
            for n, part in enumerate(plan_batches(subscriptions, settings.ARC_SCAN_BATCH_SUBSCRIPTIONS), start=1)
        )
        Scan.objects.filter(pk=scan.pk).update(
            subscriptions=len(subscriptions),
            batches_total=len(batches),
            heartbeat_at=timezone.now(),
            requests=F("requests") + session.stats.requests,
            throttled=F("throttled") + session.stats.throttled,
            quota_wait_seconds=F("quota_wait_seconds") + session.stats.quota_wait_seconds,
        )
        ids = list(ScanBatch.objects.filter(scan=scan).values_list("pk", flat=True))
        transaction.on_commit(lambda: _enqueue_batches(ids))


# The scan ends when its last batch is stored and evaluated, work that cannot start before that
# batch's final Resource Graph answer. So the last `size` subscriptions go in this many batches,
# each half the one before: what is left after the final answer is a small batch, and each tail
# batch is evaluated while the next, half its size, is collected.
TAIL_BATCHES = 4


def plan_batches(subscriptions: list[str], size: int) -> list[list[str]]:
    """Batches of at most `size` subscriptions, in order: even-sized ones, then a halving tail."""
    if len(subscriptions) <= size:
        return [subscriptions] if subscriptions else []
    body, tail = subscriptions[: len(subscriptions) - size], subscriptions[len(subscriptions) - size :]
    return store.even_parts(body, -(-len(body) // size)) + halving_parts(tail, TAIL_BATCHES)


def halving_parts(items: list[str], count: int) -> list[list[str]]:
    """`items` in at most `count` consecutive non-empty parts, each about half the one before."""
    weights = [2 ** (count - 1 - n) for n in range(count)]
    bounds = [round(len(items) * sum(weights[:n]) / sum(weights)) for n in range(count + 1)]
    return [items[start:end] for start, end in pairwise(bounds) if end > start]


def list_subscriptions(session: AzureSession, scope: Scope) -> list[str]:
    """The scope's subscriptions, and their names for display.

    Explicit subscriptions are scanned even if listing them fails (listing is cosmetic there);
    management-group and tenant scopes depend on it.
    """
    now = timezone.now()
    found: dict[str, dict[str, Any]] = {}
    explicit = list(scope.subscriptions or [])
    try:
        if explicit:
            for start in range(0, len(explicit), 1000):
                _read_subscriptions(session, found, subscriptions=explicit[start : start + 1000])
        else:
            _read_subscriptions(session, found, management_groups=list(scope.management_groups or []) or None)
    except AzureError:
        if not explicit:
            raise
        log.warning("listing subscription names of scope %s failed; scanning its list as is", scope.name)
    Subscription.objects.bulk_create(
        [Subscription(subscription_id=sub, name=i["name"], state=i["state"], scope=scope, last_seen_at=now) for sub, i in found.items()],
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["subscription_id"],
        update_fields=["name", "state", "scope", "last_seen_at"],
    )
    return sorted(set(explicit) if explicit else set(found))


def _read_subscriptions(session: AzureSession, found: dict[str, dict[str, Any]], **scope: Any) -> None:
    for page in session.query(SUBSCRIPTIONS, **scope):
        for row in page.rows:
            sub = row.get("subscriptionId") if isinstance(row, dict) else None
            if isinstance(sub, str) and len(sub) == 36:
                found[sub.lower()] = {"name": str(row.get("name") or "")[:260], "state": str(row.get("state") or "")[:32]}


def _enqueue_batches(batch_ids: list[int]) -> None:
    from posture.tasks import collect_batch as collect_batch_task

    for batch_id in batch_ids:
        collect_batch_task.delay(batch_id=batch_id)


def _fail_scan(scan: Scan, message: str) -> None:
    log.warning("scan %s failed: %s", scan.pk, message)
    Scan.objects.filter(pk=scan.pk).exclude(state__in=Scan.FINISHED_STATES).update(
        state=Scan.State.FAILED, error=message[:4000], finished_at=timezone.now()
    )


def _beat_scan(scan_id: Any) -> None:
    Scan.objects.filter(pk=scan_id, state=Scan.State.RUNNING).update(heartbeat_at=timezone.now())


# --- batches ---------------------------------------------------------------------------------
class Progress:
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
            requests=0,
            pages=0,
            rows=0,
            clusters=0,
            throttled=0,
            quota_wait_seconds=0,
            error="",
        )
    )
    if not claimed:
        return
    batch = ScanBatch.objects.select_related("scan__scope").get(pk=batch_id)
    if batch.scan.state != Scan.State.RUNNING:
        _end_batch(batch, claim, ScanBatch.State.FAILED, f"scan is {batch.scan.state}")
        return
    # The oldest batch has the quota first: batches finish collecting one after another.
    try:
        session = AzureSession(batch.scan.scope, priority=batch.pk)
    except AzureError as exc:
        _retry_or_fail(batch, claim, exc.message, permanent=exc.permanent)
        return
    progress = Progress(batch, claim, session.stats)
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
    transaction.on_commit(lambda: _after_batch(batch))
    # After the hand-over, so the batch's evaluation does not wait for it; the next batch's
    # writes are planned with the new statistics.
    if written >= bulk.ANALYZE_AFTER_ROWS:
        bulk.analyze(Cluster, AzureResource)


def _after_batch(batch: ScanBatch) -> None:
    from posture.tasks import evaluate_batch as evaluate_batch_task

    if _collecting(batch.scan_id):
        # Evaluated by the default queue's workers while collect workers take the next batch.
        evaluate_batch_task.delay(batch_id=batch.pk)
    else:
        # The last batch: its worker, free now, finishes the scan itself instead of queueing the
        # finish behind batch evaluations. The final pass evaluates this batch with the others.
        finish_scan(str(batch.scan_id))


class EvaluationSuperseded(Exception):
    """Every batch is stored: the scan's final pass takes over this batch's evaluation."""


def evaluate_batch(batch_id: int) -> None:
    """Evaluate one stored batch's clusters early, while the scan is still collecting; the
    scan's final evaluation then re-checks only clusters whose inputs changed since."""

    batch = ScanBatch.objects.select_related("scan").filter(pk=batch_id, state=ScanBatch.State.DONE).first()
    if batch is None or batch.scan.state != Scan.State.RUNNING:
        return  # gone, or the scan is finishing: its final evaluation covers these clusters

    def superseded() -> bool:
        return not _collecting(batch.scan_id)

    if superseded():
        return
    try:
        evaluate_scan(batch.scan, subscriptions=list(batch.subscriptions), superseded=superseded)
    except EvaluationSuperseded:
        # Stopped between chunks, so the final pass need not wait: what was written stands, and
        # the pass re-checks the rest by their fingerprints.
        log.info("batch %s: evaluation left to the final pass", batch_id)


def _save_batch(batch: ScanBatch, claim: uuid.UUID, data: Any, progress: Progress) -> int:
    """Store the batch if its claim still holds; returns how many rows were written."""
    now = timezone.now()
    counters = progress.counters()
    with transaction.atomic():
        if not ScanBatch.objects.filter(pk=batch.pk, claim=claim, state=ScanBatch.State.RUNNING).update(
            state=ScanBatch.State.DONE, finished_at=now, heartbeat_at=now, clusters=data.cluster_count, **counters
        ):
            raise ClaimLost
        scan = batch.scan
        written = store.store_batch(data, scan, now)
        for evidence in data.evidence:
            evidence.batch = batch
        QueryEvidence.objects.bulk_create(data.evidence)
        ScanBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now())  # stored, not only collected
        Scan.objects.filter(pk=scan.pk).update(
            batches_done=F("batches_done") + 1,
            requests=F("requests") + counters["requests"],
            pages=F("pages") + counters["pages"],
            rows=F("rows") + counters["rows"],
            clusters=F("clusters") + data.cluster_count,
            throttled=F("throttled") + counters["throttled"],
            quota_wait_seconds=F("quota_wait_seconds") + counters["quota_wait_seconds"],
            heartbeat_at=now,
        )
    return written


def _end_batch(batch: ScanBatch, claim: uuid.UUID, state: str, error: str) -> bool:
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
        _end_batch(batch, claim, ScanBatch.State.FAILED, message)
        return
    countdown = min(300, 15 * 2 ** (batch.attempts - 1))
    requeued = ScanBatch.objects.filter(pk=batch.pk, claim=claim, state=ScanBatch.State.RUNNING).update(
        state=ScanBatch.State.PENDING,
        claim=None,
        error=f"attempt {batch.attempts} failed: {message}"[:4000],
        queued_at=timezone.now(),
    )
    if requeued:
        from posture.tasks import collect_batch as collect_batch_task

        log.info("batch %s will retry in %s s: %s", batch.pk, countdown, message)
        transaction.on_commit(lambda: collect_batch_task.apply_async(kwargs={"batch_id": batch.pk}, countdown=countdown))


def _split_or_fail(batch: ScanBatch, claim: uuid.UUID, exc: ForbiddenError) -> None:
    """A 403 names no subscription reliably: halve the batch until the refused ones stand alone,
    so every readable subscription is still scanned."""
    subs = list(batch.subscriptions)
    if len(subs) == 1:
        _end_batch(batch, claim, ScanBatch.State.FAILED, exc.message)
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
        transaction.on_commit(lambda: _enqueue_batches(ids))


# --- finish ----------------------------------------------------------------------------------
def _collecting(scan_id: Any) -> bool:
    """Whether any batch of the scan is still to be collected."""
    return ScanBatch.objects.filter(scan_id=scan_id, state__in=(ScanBatch.State.PENDING, ScanBatch.State.RUNNING)).exists()


def maybe_finish(scan_id: Any) -> bool:
    """Enqueue the scan's finish once no batch is left to collect; True when it did."""
    if _collecting(scan_id):
        return False
    from posture.tasks import finish_scan as finish_scan_task

    finish_scan_task.delay(scan_id=str(scan_id))
    return True


# A finish that finds its scope busy tries again this much later instead of holding its worker.
FINISH_RETRY_SECONDS = 5
# How long a finish waits for the scope's evaluation lock before it leaves a retry behind.
FINISH_LOCK_WAIT_SECONDS = 2.0


def finish_scan(scan_id: str) -> None:
    """Close the scan once: under the scope's evaluation lock, so two finishers (a redelivered
    message, the watchdog's re-queue) never evaluate at once, and the second finds it done."""
    from posture.evaluate.lock import ScopeBusy, evaluation_lock

    scan = Scan.objects.filter(pk=scan_id, state__in=(Scan.State.RUNNING, Scan.State.EVALUATING)).first()
    if scan is None:
        return
    # In-process tasks (the embedded default) have no queue to hold up, and a retry would recurse.
    wait = 1800 if finish_scan_task_runs_inline() else FINISH_LOCK_WAIT_SECONDS
    try:
        with evaluation_lock(scan.scope_id, wait) as lock:
            _finish_locked(scan_id, lock)
    except ScopeBusy:
        if scan.state == Scan.State.EVALUATING:
            # Its finisher is alive and holds the lock (a dead one's lock went with its session);
            # should that lock belong to another evaluation, the watchdog re-queues the finish
            # once the scan's heartbeat is stale.
            return
        if _collecting(scan_id):
            return  # its last batch finishes it
        from posture.tasks import finish_scan as finish_scan_task

        log.info("scan %s: scope %s is being evaluated; finishing in %s s", scan_id, scan.scope_id, FINISH_RETRY_SECONDS)
        finish_scan_task.apply_async(kwargs={"scan_id": str(scan_id)}, countdown=FINISH_RETRY_SECONDS)


def finish_scan_task_runs_inline() -> bool:
    from posture.tasks import finish_scan as finish_scan_task

    return bool(finish_scan_task.app.conf.task_always_eager)


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
        removed = store.mark_removed(scan, {sub for subs in done_subscriptions for sub in subs}, now)
    warnings = _unscanned_subscriptions(scan, {sub for _, subs, _ in batches for sub in subs})
    evaluation = evaluate_scan(scan, lock=lock)
    prune_evidence(scan.scope_id)
    # Refused rows: some facts could not be refreshed, and unknown never counts as a pass.
    refused = store.data_problem_warnings(scan)
    warnings += refused
    state = Scan.State.SUCCEEDED if done and not failed and not refused else Scan.State.PARTIAL if done else Scan.State.FAILED
    error = ""
    if failed:
        unique = list(dict.fromkeys(failed))
        error = f"{len(failed)} of {len(failed) + done} batches failed: " + " | ".join(unique[:5])
    Scan.objects.filter(pk=scan.pk, state=Scan.State.EVALUATING).update(
        state=state, finished_at=timezone.now(), error=error[:4000], clusters_removed=removed, warnings=warnings
    )
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


# Clusters a batch's evaluation checks between two looks at whether the final pass took over.
BATCH_EVALUATION_CHUNK = 500


def evaluate_scan(
    scan: Scan, subscriptions: list[str] | None = None, *, superseded: Callable[[], bool] = lambda: False, lock: Any = None
) -> RunStats:
    """Evaluate the clusters of `subscriptions` (one stored batch, early), or every cluster of the
    scope with a fleet snapshot, keeping the scan's heartbeat going. A batch's evaluation raises
    EvaluationSuperseded between chunks once `superseded()`, and while it waits for the scope's
    lock (held by the batch before it, which stops as soon as the final pass wants the lock)."""
    from posture.scans.evaluation import CHUNK, evaluate_scope

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


def prune_evidence(scope_id: int) -> None:
    keep = list(
        Scan.objects.filter(scope_id=scope_id).order_by("-created_at").values_list("pk", flat=True)[: settings.ARC_EVIDENCE_KEEP_SCANS]
    )
    QueryEvidence.objects.filter(batch__scan__scope_id=scope_id).exclude(batch__scan_id__in=keep).delete()


# --- watchdog --------------------------------------------------------------------------------
def watchdog() -> dict[str, int]:
    """Find work orphaned by dead workers or lost messages and hand it out again."""
    from posture.tasks import finish_scan as finish_scan_task
    from posture.tasks import start_scan as start_scan_task

    now = timezone.now()
    stale = now - timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS)
    counts = {"batches_requeued": 0, "batches_failed": 0, "scans_restarted": 0, "scans_finished": 0}
    for batch in ScanBatch.objects.filter(
        Q(state=ScanBatch.State.RUNNING, heartbeat_at__lt=stale) | Q(state=ScanBatch.State.PENDING, queued_at__lt=stale),
        scan__state=Scan.State.RUNNING,
    ):
        if batch.state == ScanBatch.State.RUNNING and batch.attempts >= settings.ARC_BATCH_MAX_ATTEMPTS:
            counts["batches_failed"] += _end_batch(
                batch, batch.claim, ScanBatch.State.FAILED, f"worker lost {batch.attempts} times; giving up"
            )
            continue
        if ScanBatch.objects.filter(pk=batch.pk, state=batch.state, heartbeat_at=batch.heartbeat_at, queued_at=batch.queued_at).update(
            state=ScanBatch.State.PENDING, claim=None, queued_at=now
        ):
            counts["batches_requeued"] += 1
            _enqueue_batches([batch.pk])
    for scan in Scan.objects.filter(state=Scan.State.PENDING, created_at__lt=stale):
        counts["scans_restarted"] += 1
        start_scan_task.delay(scan_id=str(scan.pk))
    for scan in Scan.objects.filter(state=Scan.State.RUNNING, heartbeat_at__lt=stale):
        if not scan.batches.exists():  # its start died after claiming: start it over
            if Scan.objects.filter(pk=scan.pk, state=Scan.State.RUNNING, heartbeat_at=scan.heartbeat_at).update(state=Scan.State.PENDING):
                counts["scans_restarted"] += 1
                start_scan_task.delay(scan_id=str(scan.pk))
        elif not scan.batches.filter(state__in=[ScanBatch.State.PENDING, ScanBatch.State.RUNNING]).exists():
            counts["scans_finished"] += 1
            finish_scan_task.delay(scan_id=str(scan.pk))
    for scan in Scan.objects.filter(state=Scan.State.EVALUATING, heartbeat_at__lt=stale):
        counts["scans_finished"] += 1
        finish_scan_task.delay(scan_id=str(scan.pk))
    due = [pk for pk in scopes_needing_evaluation(now) if not Scan.objects.filter(scope_id=pk, state__in=Scan.ACTIVE_STATES).exists()]
    if due:
        from posture.tasks import evaluate_scopes as evaluate_scopes_task

        evaluate_scopes_task.delay(scope_ids=due)
    counts["scopes_reevaluated"] = len(due)
    return counts
