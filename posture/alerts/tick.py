"""The periodic alert tick (beat, every five minutes: posture/scans/schedules.py): plans again
the alerts of scans whose planning failed when they closed (planning.py), plans the time-based
alerts (stale or offline clusters, expiring decisions, and re-evaluations whose planning was
missed: timed.py), then sends the daily digests that are due (digest.py) and the
daily cap's summaries that no other message carried (cap.py).

Each message is written in a transaction of its own that also marks what it holds (the digest's
entries, the summarised held rows), after locking them: a tick run twice, or two ticks at once,
write each message once, and a late tick (workers down at the digest hour) sends what is due at
its first run. Sends are queued after each commit; rows whose send could not be queued (broker
down) are queued again by the watchdog (outbox.py), as queued_at goes stale.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.db.models.functions import Lower
from django.utils import timezone
from kombu.exceptions import OperationalError

from posture.alerts import cap, timed
from posture.alerts.digest import DIGEST_NAME
from posture.alerts.planning import retry_scan_alerts
from posture.alerts.routing import message_id
from posture.alerts.rules import address_problem
from posture.models import DigestEntry, Notification
from posture.task_queue import SEND_NOTIFICATION, enqueue

log = logging.getLogger(__name__)

State = Notification.State
CAP_SUMMARY_NAME = "Held back by the daily cap"


def alert_tick(now: dt.datetime | None = None) -> dict[str, int]:
    """The task's body: write and queue the due digests and cap summaries; how many of each."""
    now = now or timezone.now()
    planned = {**retry_scan_alerts(), **timed.plan_timed_alerts(now)}
    return {**planned, "digests": len(send_due_digests(now)), "cap_summaries": len(send_cap_summaries(now))}


def send_due_digests(now: dt.datetime) -> list[Notification]:
    """Write the digest of every user with entries due at `now`: the rows written."""
    users = DigestEntry.objects.filter(notification__isnull=True, due_at__lte=now).values_list("user_id", flat=True)
    rows = [_digest_of(user_id, now) for user_id in sorted(set(users))]
    return [row for row in rows if row is not None]


def send_cap_summaries(now: dt.datetime) -> list[Notification]:
    """A summary to every recipient with held rows from before today that no message summarised."""
    stale = (
        Notification.objects.filter(state=State.HELD, summarised_in__isnull=True, created_at__lt=cap.day_start(now))
        .annotate(address=Lower("recipient"))
        .values("address")
        .annotate(first=Min("created_at"))
    )
    rows = [_cap_summary_of(group["address"], now) for group in sorted(stale, key=lambda g: g["address"])]
    return [row for row in rows if row is not None]


def _digest_of(user_id: int, now: dt.datetime) -> Notification | None:
    with transaction.atomic():
        # Locked: a second tick waits here, then finds the entries taken.
        entries = list(
            DigestEntry.objects.select_for_update(of=("self",))
            .filter(user_id=user_id, notification__isnull=True, due_at__lte=now)
            .select_related("trigger")
            .order_by("pk")
        )
        if not entries:
            return None
        user = get_user_model().objects.get(pk=user_id)
        address = (user.email or "").strip()
        changes = [{**item, "rule": e.rule_name, "rule_id": e.rule_id} for e in entries for item in e.listed()]
        # Unique per digest: its first entry is in no other (the lock above keeps a racing tick out).
        source = f"digest:{user_id}:{now.astimezone(dt.UTC):%Y-%m-%d}:{entries[0].pk}"
        row = _row(DIGEST_NAME, "digest", source, address, user, changes, now)
        _problem(row, _user_problem(user, address))
        if not _insert(row, address):
            return None  # written already: cannot happen while the entries are locked, but never twice
        DigestEntry.objects.filter(pk__in=[e.pk for e in entries]).update(notification=row)
    log.info("digest of user %s: %s entries, %s changes", user_id, len(entries), len(changes))
    return row


def _cap_summary_of(address: str, now: dt.datetime) -> Notification | None:
    with transaction.atomic():
        held = list(
            Notification.objects.select_for_update()
            .annotate(address=Lower("recipient"))
            .filter(state=State.HELD, summarised_in__isnull=True, address=address)
            .order_by("created_at", "pk")
            .only("recipient", "user", "created_at")
        )
        if not held:
            return None
        users = [n.user for n in held if n.user_id is not None]
        source = f"cap:{now.astimezone(dt.UTC):%Y-%m-%d}"
        row = _row(CAP_SUMMARY_NAME, "cap_summary", source, held[0].recipient, users[0] if users else None, [], now)
        _problem(row, address_problem(row.recipient))
        if not _insert(row, address):
            return None
    log.info("cap summary to %s: %s held messages", address, len(held))
    return row


def _row(name: str, kind: str, source: str, address: str, user: Any, changes: list[dict[str, Any]], now: dt.datetime) -> Notification:
    pk = uuid.uuid4()
    return Notification(
        id=pk,
        rule=None,
        rule_name=name,
        kind=kind,
        source=source,
        recipient=address,
        user=user,
        changes=changes,
        item_count=len(changes),
        message_id=message_id(pk),
        state=State.PENDING,
        next_attempt_at=now,
        queued_at=now,
        created_at=now,
    )


def _problem(row: Notification, problem: str) -> None:
    """A recipient that cannot be mailed: a clear, final state instead of a message waiting forever."""
    if problem:
        row.state, row.last_error, row.queued_at = State.FAILED, problem, None


def _user_problem(user: Any, address: str) -> str:
    if not user.is_active or not user.has_perm("posture.view_posture"):
        return "The user is inactive or may no longer view the posture: the digest is not sent."
    if not address:
        return "The user has no email address: the digest is not sent."
    return address_problem(address)


def _insert(row: Notification, address: str) -> bool:
    """Write `row` with the summary of what the cap held back from `address` (inside the caller's
    transaction, sends queued on commit); False when the same message exists already."""
    try:
        with transaction.atomic():
            cap.summarise(row, cap.open_held([address]).get(address.lower(), []))
            row.save(force_insert=True)
    except IntegrityError:
        return False
    if row.state == State.PENDING:
        transaction.on_commit(partial(_enqueue, str(row.pk)))
    return True


def _enqueue(notification_id: str) -> None:
    try:
        enqueue(SEND_NOTIFICATION, notification_id=notification_id)
    except (OperationalError, OSError) as exc:  # the broker is down: the watchdog queues it later
        log.warning("could not queue notification %s (%s); the watchdog will", notification_id, type(exc).__name__)
