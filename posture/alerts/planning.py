"""A closed scan's changes turned into Notification rows: one per rule that covers some of them
and per recipient of that rule. Re-evaluations (posture/alerts/reevaluation.py) and the periodic
tick (posture/alerts/timed.py) write their rows through `write_notifications` too.

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

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from posture.alerts import triggers
from posture.alerts.kinds import SCAN_KINDS
from posture.alerts.routing import route
from posture.alerts.rules import covers
from posture.models import AlertRule, AlertTrigger, Notification, Scan
from posture.task_queue import SEND_NOTIFICATIONS, enqueue

log = logging.getLogger(__name__)

# Rows per send task: a few, so that several workers share a large planning run.
SEND_BATCH = 10


def select(rules: list[AlertRule], candidates: dict[str, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """What each rule covers among `candidates` (kind → candidates), as stored on its
    trigger (rule id → items; a rule covering nothing is absent)."""
    by_rule = {}
    for rule in rules:
        covered = [triggers.item(c) for c in candidates.get(rule.kind, ()) if triggers.accepts(rule, c) and covers(rule, c)]
        if covered:
            by_rule[rule.pk] = covered
    return by_rule


def scan_items(scan: Scan, rules: list[AlertRule]) -> dict[int, list[dict[str, Any]]]:
    """What each of `rules` covers among `scan`'s changes, as stored on its notifications
    (rule id → items; a rule covering nothing is absent). The preview shows the same."""
    rules = [rule for rule in rules if rule.kind in SCAN_KINDS]
    kinds = {rule.kind for rule in rules}
    return select(rules, triggers.scan_candidates(scan, kinds) if kinds else {})


def write_notifications(
    rules: list[AlertRule], by_rule: dict[int, list[dict[str, Any]]], *, source: str, scan: Scan | None, now: dt.datetime
) -> list[str]:
    """Write each rule's trigger for `source` (its items, once) and its rows (skipping the
    recipients it already has) in the caller's transaction, and queue their sends once it
    commits; the ids of the rows to send."""
    if not by_rule:
        return []
    planned = set(Notification.objects.filter(source=source, rule_id__in=list(by_rule)).values_list("rule_id", "recipient"))
    stored = store_triggers([rule for rule in rules if rule.pk in by_rule], by_rule, source=source, scan=scan, now=now)
    rows: list[Notification] = []
    sent_today: dict[str, int] = {}  # the daily cap's tally, shared by every rule of this run
    for rule in rules:
        if rule.pk in by_rule:
            rows += route(rule, stored[rule.pk], source=source, scan=scan, now=now, planned=planned, sent_today=sent_today)
    with transaction.atomic():
        Notification.objects.bulk_create(rows)  # small rows: the items are the triggers'
    to_send = [str(row.pk) for row in rows if row.state == Notification.State.PENDING]
    transaction.on_commit(lambda: _enqueue(to_send))
    return to_send


def store_triggers(
    rules: list[AlertRule], by_rule: dict[int, list[dict[str, Any]]], *, source: str, scan: Scan | None, now: dt.datetime
) -> dict[int, AlertTrigger]:
    """Each rule's trigger for `source` (rule id → trigger): the one a previous run wrote, or a
    new one holding its items."""
    stored = {t.rule_id: t for t in AlertTrigger.objects.filter(source=source, rule__in=rules).defer("items")}
    fresh = [
        AlertTrigger(
            rule=rule,
            rule_name=rule.name,
            kind=rule.kind,
            source=source,
            scan=scan,
            items=by_rule[rule.pk],
            item_count=len(by_rule[rule.pk]),
            created_at=now,
        )
        for rule in rules
        if rule.pk not in stored
    ]
    # One row per statement: a multi-row INSERT quotes its JSON in Python, several times slower
    # than libpq quoting one row's (2.4 s against 0.4 s for four rows of 10,000 items).
    AlertTrigger.objects.bulk_create(fresh, batch_size=1)
    return stored | {t.rule_id: t for t in fresh}


def plan_scan_alerts(scan: Scan) -> list[str]:
    """Write the notifications of `scan`'s changes (call it inside the transaction that closes
    the scan) and queue their sends once it commits; the ids of the rows to send."""
    rules = list(AlertRule.objects.filter(enabled=True, kind__in=SCAN_KINDS))
    by_rule = scan_items(scan, rules)
    to_send = write_notifications(rules, by_rule, source=f"scan:{scan.pk}", scan=scan, now=timezone.now())
    if by_rule:
        log.info("scan %s: %s notifications to send", scan.pk, len(to_send))
    return to_send


def plan_or_warn(scan: Scan, warnings: list[str]) -> None:
    """plan_scan_alerts in the transaction closing `scan` (whose `warnings` are written): a
    planning failure becomes the scan's warning, never an unclosed scan."""
    try:
        with transaction.atomic():
            plan_scan_alerts(scan)
    except Exception as exc:  # noqa: BLE001 - reported on the scan; its verdicts stand, and the tick retries
        log.exception("scan %s: alerts could not be planned; the alert tick will try again", scan.pk)
        problem = f"Alerts could not be planned: {type(exc).__name__}: {exc}"[:1000]
        Scan.objects.filter(pk=scan.pk).update(warnings=[*warnings, problem], alerts_pending=True)


# Scans whose planning failed, planned again per tick: the oldest first.
RETRIES_PER_TICK = 20


def retry_scan_alerts() -> dict[str, int]:
    """Plan again the alerts of scans whose planning failed when they closed (plan_or_warn), each
    in a transaction that also clears its flag; a second run writes nothing twice (the triggers'
    and rows' unique keys)."""
    counts = {"scan_alerts_retried": 0, "scan_alerts_still_failing": 0}
    pending = Scan.objects.filter(alerts_pending=True).order_by("created_at").values_list("pk", flat=True)
    for pk in list(pending[:RETRIES_PER_TICK]):
        try:
            with transaction.atomic():
                scan = Scan.objects.select_for_update(skip_locked=True).filter(pk=pk, alerts_pending=True).first()
                if scan is None:
                    continue  # another tick has it
                plan_scan_alerts(scan)
                Scan.objects.filter(pk=pk).update(alerts_pending=False)
            counts["scan_alerts_retried"] += 1
        except Exception:  # noqa: BLE001 - stays pending for the next tick
            counts["scan_alerts_still_failing"] += 1
            log.exception("scan %s: alerts still could not be planned", pk)
    return counts


def _enqueue(ids: list[str]) -> None:
    for start in range(0, len(ids), SEND_BATCH):
        try:
            enqueue(SEND_NOTIFICATIONS, notification_ids=ids[start : start + SEND_BATCH])
        except (OperationalError, OSError) as exc:  # the broker is down: the watchdog queues the rest
            log.warning("could not queue %s notifications (%s); the watchdog will", len(ids) - start, type(exc).__name__)
            return
