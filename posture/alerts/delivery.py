"""Sending one notification, at most once.

The task claims the row (pending → sending, one conditional UPDATE: a redelivered or duplicated
message finds nothing to claim). Right before the DATA command it moves the row to handing_over,
only if its claim still stands; as soon as the server answers 250 it records the row sent. So:

- a worker killed before DATA leaves `sending`: nothing went out, and the watchdog hands the row
  back (posture/alerts/outbox.py);
- a worker killed during DATA, or before it could record the 250, leaves `handing_over`: the
  server may have the message, so the watchdog marks it `unconfirmed` and it is never sent again.
  The same holds when the connection drops during DATA with no answer from the server;
- a refusal with a 5xx answer (recipient, message) fails the row at once; other errors (server
  down, 4xx, timeouts) go back to pending with exponential backoff until ARC_ALERT_RETRY_HOURS
  after the row was planned, then fail. Every attempt sends the same Message-ID.

A worker keeps its SMTP connection open from one message to the next (smtp.send_reusing); each
message still writes handing_over before its own DATA.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F
from django.utils import timezone

from posture.alerts.messages import build_message
from posture.alerts.smtp import ClaimLost, DataHooks, HookedBackend, SmtpFailure, classify, send_reusing
from posture.models import Notification
from posture.task_queue import SEND_NOTIFICATION, enqueue, tasks_run_inline

log = logging.getLogger(__name__)

State = Notification.State
# A retry this soon is queued with a countdown; a later one is left to the watchdog, since Redis
# hands a message it holds for longer than its visibility timeout to a second worker.
COUNTDOWN_LIMIT_SECONDS = 600
# What building and recording the message reads of the row: not its trigger's items, which the
# worker reads only when it has not rendered that trigger yet (messages.message_parts). A rule's
# row has no `changes` of its own (an empty list); a digest's are its message.
MESSAGE_FIELDS = (
    "id", "rule_id", "rule_name", "kind", "scan_id", "recipient", "user_id", "trigger_id", "changes",
    "message_id", "attempts", "created_at", "held_summary",
)  # fmt: skip


def send_notification(notification_id: str) -> str:
    """The task's body: send a due pending notification; its state afterwards ("" when there
    was nothing to claim: sent already, claimed elsewhere, or not due yet)."""
    claim = timezone.now()
    claimed = Notification.objects.filter(pk=notification_id, state=State.PENDING, next_attempt_at__lte=claim).update(
        state=State.SENDING, claimed_at=claim, attempts=F("attempts") + 1
    )
    if not claimed:
        return ""
    notification = Notification.objects.only(*MESSAGE_FIELDS).get(pk=notification_id)
    attempt = Attempt(notification, claim)
    try:
        message = build_message(notification)
    except Exception as exc:  # noqa: BLE001 - no later attempt would build it either: a clear final state
        log.exception("notification %s: its message could not be built", notification_id)
        attempt.failed(SmtpFailure(f"The message could not be built: {type(exc).__name__}: {exc}"[:500], permanent=True))
        return attempt.state or Notification.objects.values_list("state", flat=True).get(pk=notification_id)
    try:
        if settings.EMAIL_HOST:
            send_reusing(message, DataHooks(attempt.hand_over, attempt.sent))
        else:  # the embedded default: no SMTP host, so the message goes to the log
            attempt.hand_over()
            log.info("alert (no EMAIL_HOST set) to %s: %s\n%s", notification.recipient, message.subject, message.body)
            attempt.sent("no EMAIL_HOST set: written to the log")
    except ClaimLost:
        log.warning("notification %s was handed to another attempt before DATA; leaving it", notification_id)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row, with its reason
        attempt.failed(classify(exc))
    if attempt.state:  # what this attempt's last write left, when that write took
        return attempt.state
    return Notification.objects.values_list("state", flat=True).get(pk=notification_id)


def send_notifications(notification_ids: list[str]) -> list[str]:
    """send_notification for each, in order: one task message carries a planner's few rows
    (queueing and handing out a task per message cost as much as sending it). Each row is still
    claimed on its own, so a redelivered batch sends nothing twice, and a batch whose worker is
    lost leaves its unsent rows pending for the watchdog (their queued_at goes stale)."""
    return [send_notification(notification_id) for notification_id in notification_ids]


def _close_quietly(backend: HookedBackend) -> None:
    try:
        backend.close()
    except Exception as exc:  # noqa: BLE001 - the outcome is recorded already; QUIT is a courtesy
        log.info("closing the SMTP connection failed: %s", type(exc).__name__)


class Attempt:
    """One claimed attempt: each write is conditional on the claim, so an attempt that lost the
    row (the watchdog handed it on) changes nothing."""

    def __init__(self, notification: Notification, claim: Any) -> None:
        self.notification, self.claim = notification, claim
        self.mine = Notification.objects.filter(pk=notification.pk, claimed_at=claim)
        # The row's state after this attempt's last write, "" when that write found the row
        # handed on (then only the database knows).
        self.state = ""

    def _set(self, rows: Any, state: str, **changes: Any) -> int:
        updated = rows.update(state=state, **changes)
        self.state = state if updated else ""
        return updated

    def hand_over(self) -> None:
        if not self._set(self.mine.filter(state=State.SENDING), State.HANDING_OVER):
            raise ClaimLost(f"notification {self.notification.pk}")

    def sent(self, reply: str) -> None:
        # UNCONFIRMED too: a watchdog may have given up on a slow DATA that did succeed.
        rows = self.mine.filter(state__in=(State.HANDING_OVER, State.UNCONFIRMED))
        self._set(rows, State.SENT, sent_at=timezone.now(), smtp_reply=reply[:500], last_error="")

    def failed(self, failure: SmtpFailure) -> None:
        n, now = self.notification, timezone.now()
        handing_over = self.mine.filter(state=State.HANDING_OVER)
        if not failure.answered and self._set(handing_over, State.UNCONFIRMED, last_error=_unconfirmed(failure)):
            log.warning("notification %s: connection lost during DATA; not sent again (%s)", n.pk, failure.message)
            return
        ongoing = self.mine.filter(state__in=(State.SENDING, State.HANDING_OVER))
        deadline = n.created_at + timedelta(hours=settings.ARC_ALERT_RETRY_HOURS)
        if failure.permanent or now >= deadline:
            reason = failure.message if failure.permanent else f"Gave up after {n.attempts} attempts: {failure.message}"
            self._set(ongoing, State.FAILED, last_error=reason)
            log.warning("notification %s to %s failed: %s", n.pk, n.recipient, reason)
            return
        delay = backoff_seconds(n.attempts)
        due = min(now + timedelta(seconds=delay), deadline)
        # In-process tasks cannot wait for a countdown: the watchdog queues those retries.
        queued = delay <= COUNTDOWN_LIMIT_SECONDS and not tasks_run_inline()
        changes: dict[str, Any] = {"state": State.PENDING, "next_attempt_at": due, "claimed_at": None, "last_error": failure.message}
        if queued:
            changes["queued_at"] = due  # the watchdog leaves it alone until this is stale
        if self._set(ongoing, **changes) and queued:
            enqueue(SEND_NOTIFICATION, countdown=(due - now).total_seconds(), notification_id=str(n.pk))
        log.info("notification %s: attempt %s failed (%s); next at %s", n.pk, n.attempts, failure.message, due.isoformat())


def _unconfirmed(failure: SmtpFailure) -> str:
    return f"The connection was lost while the mail server took the message ({failure.message}); it may have been delivered."


def backoff_seconds(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: the base doubled each time, capped, with
    jitter so that many rows waiting on one server do not all come back at once."""
    base, cap = settings.ARC_ALERT_RETRY_BASE_SECONDS, settings.ARC_ALERT_RETRY_CAP_SECONDS
    return min(cap, base * 2 ** min(max(attempts - 1, 0), 30)) * random.uniform(0.75, 1.0)


def send_test_message(address: str) -> str:
    """Send a test message to `address` through the configured SMTP server; the server's answer
    to DATA. SmtpError (with the reason, as a notification would record it) when it is not taken."""
    if not settings.EMAIL_HOST:
        raise SmtpError("EMAIL_HOST is not set: alerts are written to the log, not sent.")
    replies: list[str] = []
    message = EmailMessage(
        subject="[Arc Posture] Test message",
        body=f"This message from Arc Posture ({settings.SITE_URL}) checks the SMTP settings. Alerts will arrive the same way.\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    backend = HookedBackend(DataHooks(lambda: None, replies.append))
    try:
        backend.send_messages([message])
    except Exception as exc:  # noqa: BLE001 - said in the words a notification would record
        raise SmtpError(classify(exc).message) from exc
    finally:
        _close_quietly(backend)
    return replies[0]


class SmtpError(Exception):
    """The test message was not taken."""
