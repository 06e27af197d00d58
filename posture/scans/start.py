"""A scan's start: claim the pending scan, list the scope's subscriptions, plan them in batches
and queue one collect_batch per batch (posture/scans/batches.py)."""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from posture.alerts.planning import plan_or_warn
from posture.collect.client import AzureSession
from posture.collect.errors import AzureError
from posture.collect.queries import SUBSCRIPTIONS
from posture.feed.publish import publish_scan
from posture.heartbeat import heartbeat_thread
from posture.models import Scan, ScanBatch, Scope, Subscription
from posture.models.scans import counters_added
from posture.scans.batches import enqueue_batches
from posture.scans.sweep import even_parts

log = logging.getLogger(__name__)


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
        listing = session.stats
        Scan.objects.filter(pk=scan.pk).update(
            subscriptions=len(subscriptions),
            batches_total=len(batches),
            heartbeat_at=timezone.now(),
            **counters_added(
                {"requests": listing.requests, "throttled": listing.throttled, "quota_wait_seconds": listing.quota_wait_seconds}
            ),
        )
        ids = list(ScanBatch.objects.filter(scan=scan).values_list("pk", flat=True))
        transaction.on_commit(lambda: enqueue_batches(ids))


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
    return even_parts(body, -(-len(body) // size)) + halving_parts(tail, TAIL_BATCHES)


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


def _fail_scan(scan: Scan, message: str) -> None:
    log.warning("scan %s failed: %s", scan.pk, message)
    with transaction.atomic():  # closed and its alerts planned at once, as finish.py does
        if (
            Scan.objects.filter(pk=scan.pk)
            .exclude(state__in=Scan.FINISHED_STATES)
            .update(state=Scan.State.FAILED, error=message[:4000], finished_at=timezone.now())
        ):
            failed = Scan.objects.select_related("scope").get(pk=scan.pk)
            plan_or_warn(failed, failed.warnings)
            # Every scan's close publishes its changes (none, unless a start presumed dead and
            # restarted by the watchdog went on to store batches); last: it holds the feed's lock.
            publish_scan(failed)


def _beat_scan(scan_id: Any) -> None:
    Scan.objects.filter(pk=scan_id, state=Scan.State.RUNNING).update(heartbeat_at=timezone.now())
