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
from typing import Any

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from posture.alerts.kinds import REGRESSED
from posture.alerts.routing import route
from posture.alerts.rules import covers
from posture.models import AlertRule, ChangeEvent, Notification, Scan
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


STORED_KEYS = ("event", "cluster", "name", "control", "from", "to")


def scan_items(scan: Scan, rules: list[AlertRule]) -> dict[int, list[dict[str, Any]]]:
    """What each of `rules` covers among `scan`'s changes, as stored on its notifications
    (rule id → items; a rule covering nothing is absent). The preview shows the same."""
    rules = [rule for rule in rules if rule.kind == AlertRule.Kind.CONTROL_REGRESSION]
    changes = regressions(scan) if rules else []
    by_rule = {}
    for rule in rules:
        covered = [{k: c[k] for k in STORED_KEYS} for c in changes if covers(rule, c)]
        if covered:
            by_rule[rule.pk] = covered
    return by_rule


def plan_scan_alerts(scan: Scan) -> list[str]:
    """Write the notifications of `scan`'s changes (call it inside the transaction that closes
    the scan) and queue their sends once it commits; the ids of the rows to send."""
    rules = list(AlertRule.objects.filter(enabled=True))
    by_rule = scan_items(scan, rules)
    if not by_rule:
        return []
    source = f"scan:{scan.pk}"
    planned = set(Notification.objects.filter(source=source).values_list("rule_id", "recipient"))
    now = timezone.now()
    rows: list[Notification] = []
    sent_today: dict[str, int] = {}  # the daily cap's tally, shared by every rule of this run
    for rule in rules:
        if rule.pk in by_rule:
            rows += route(rule, by_rule[rule.pk], source=source, scan=scan, now=now, planned=planned, sent_today=sent_today)
    with transaction.atomic():
        Notification.objects.bulk_create(rows)
    to_send = [str(row.pk) for row in rows if row.state == Notification.State.PENDING]
    transaction.on_commit(lambda: _enqueue(to_send))
    log.info("scan %s: %s notifications planned", scan.pk, len(rows))
    return to_send


def _enqueue(ids: list[str]) -> None:
    for notification_id in ids:
        try:
            enqueue(SEND_NOTIFICATION, notification_id=notification_id)
        except (OperationalError, OSError) as exc:  # the broker is down: the watchdog queues the rest
            log.warning("could not queue %s notifications (%s); the watchdog will", len(ids), type(exc).__name__)
            return
