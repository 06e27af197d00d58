"""A closed scan's regressions turned into Notification rows: one per rule that covers some of
them and per recipient of that rule.

Why at the scan's close and not where the change events are written: a scan records its change
events chunk by chunk, in transactions of their own (on a second connection while the next chunk
is evaluated), and a batch evaluated early may see its events revised or dropped by the final
pass (posture/store/results.py). The events are final only once the final evaluation is stored,
and the scan becomes `succeeded`/`partial`/`failed` in one conditional UPDATE. The rows are
written in that same transaction (posture/scans/finish.py): a finisher that dies before it
commits leaves the scan `evaluating` and no row, and the finish run again plans once. The unique
(rule, recipient, source) constraint, with source "scan:<id>", keeps a second run from writing
a duplicate even so.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from posture.alerts.kinds import REGRESSED
from posture.alerts.rules import address_problem, covers
from posture.models import AlertRule, AlertSubscription, ChangeEvent, Notification, Scan
from posture.task_queue import SEND_NOTIFICATION, enqueue

log = logging.getLogger(__name__)


def regressions(scan: Scan) -> list[dict[str, Any]]:
    """The scan's change events into fail or unknown from any other status, with what rules
    match on. A standing failure records no event, so it never appears here; neither does a move
    between fail and unknown."""
    rows = (
        ChangeEvent.objects.filter(scan=scan, to_status__in=REGRESSED)
        .exclude(from_status__in=REGRESSED)
        .order_by("pk")
        .values(
            "pk",
            "control",
            "from_status",
            "to_status",
            "cluster_id",
            "cluster__name",
            "cluster__scope_id",
            "cluster__subscription_id",
            "cluster__resource_group",
            "cluster__tags",
        )
    )
    return [
        {
            "event": r["pk"],
            "cluster": r["cluster_id"],
            "name": r["cluster__name"],
            "scope_id": r["cluster__scope_id"],
            "subscription_id": r["cluster__subscription_id"],
            "resource_group": r["cluster__resource_group"],
            "tags": r["cluster__tags"],
            "control": r["control"],
            "from": r["from_status"],
            "to": r["to_status"],
        }
        for r in rows
    ]


def recipients(rule: AlertRule) -> list[tuple[str, Any]]:
    """(address, user or None) of every recipient of `rule` receiving at once: active subscribed
    users who may view the posture and have an address, then the distribution addresses; each
    address once, whatever its case."""
    found: dict[str, tuple[str, Any]] = {}
    subscriptions = rule.subscribers.filter(mode=AlertSubscription.Mode.IMMEDIATE, user__is_active=True).select_related("user")
    for subscription in subscriptions.order_by("user_id"):
        user = subscription.user
        address = (user.email or "").strip()
        if address and user.has_perm("posture.view_posture"):
            found.setdefault(address.lower(), (address, user))
    for address in rule.addresses:
        found.setdefault(address.lower(), (address, None))
    return list(found.values())


def message_id(notification_id: uuid.UUID) -> str:
    """A Message-ID fixed when the row is planned, so every attempt sends the same one."""
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<alert.{notification_id.hex}@{domain}>"


STORED_KEYS = ("event", "cluster", "name", "control", "from", "to")


def plan_scan_alerts(scan: Scan) -> list[str]:
    """Write the notifications of `scan`'s regressions (call it inside the transaction that closes
    the scan) and queue their sends once it commits; the ids of the rows to send."""
    rules = list(AlertRule.objects.filter(enabled=True, kind=AlertRule.Kind.CONTROL_REGRESSION))
    if not rules:
        return []
    changes = regressions(scan)
    if not changes:
        return []
    source = f"scan:{scan.pk}"
    planned = set(Notification.objects.filter(source=source).values_list("rule_id", "recipient"))
    now = timezone.now()
    rows = []
    for rule in rules:
        covered = [{k: c[k] for k in STORED_KEYS} for c in changes if covers(rule, c)]
        if covered:
            rows += _rows(rule, covered, source, scan, now, planned)
    with transaction.atomic():
        Notification.objects.bulk_create(rows)
    to_send = [str(row.pk) for row in rows if row.state == Notification.State.PENDING]
    transaction.on_commit(lambda: _enqueue(to_send))
    log.info("scan %s: %s regressions, %s notifications planned", scan.pk, len(changes), len(rows))
    return to_send


def _rows(rule: AlertRule, covered: list[dict[str, Any]], source: str, scan: Scan, now: Any, planned: set[Any]) -> Iterable[Notification]:
    for address, user in recipients(rule):
        if (rule.pk, address) in planned:
            continue
        pk = uuid.uuid4()
        problem = address_problem(address)
        yield Notification(
            id=pk,
            rule=rule,
            rule_name=rule.name,
            kind=rule.kind,
            source=source,
            scan=scan,
            recipient=address,
            user=user,
            changes=covered,
            message_id=message_id(pk),
            # A bad address is a clear, final state, never an endless retry.
            state=Notification.State.FAILED if problem else Notification.State.PENDING,
            last_error=problem,
            next_attempt_at=now,
            queued_at=None if problem else now,
            created_at=now,
        )


def _enqueue(ids: list[str]) -> None:
    for notification_id in ids:
        try:
            enqueue(SEND_NOTIFICATION, notification_id=notification_id)
        except (OperationalError, OSError) as exc:  # the broker is down: the watchdog queues the rest
            log.warning("could not queue %s notifications (%s); the watchdog will", len(ids), type(exc).__name__)
            return
