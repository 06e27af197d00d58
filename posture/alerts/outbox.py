"""The watchdog's part for alerts: nothing in the outbox waits forever, and nothing is sent twice.

- a row left `sending` by a lost worker (DATA never began) goes back to pending, due now;
- a row left `handing_over` (the server may have taken the message) becomes `unconfirmed`;
- a due pending row whose send was not queued lately (its message lost, Redis restarted, or its
  retry too far off for a countdown) is queued again.

Every change is a conditional UPDATE, so a watchdog racing a live worker changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from posture.alerts.planning import SEND_BATCH  # as planning queues them: a tenth of the messages
from posture.models import Notification
from posture.task_queue import SEND_NOTIFICATIONS, enqueue

State = Notification.State
# Rows queued again per watchdog tick: the tick stays short, the next one takes the rest.
REQUEUE_LIMIT = 10_000


def stale_after() -> timedelta:
    """How long a send may look silent before its worker is presumed lost: an SMTP exchange
    takes a few round trips, each up to EMAIL_TIMEOUT."""
    return timedelta(seconds=max(settings.ARC_WATCHDOG_STALE_SECONDS, 4 * settings.EMAIL_TIMEOUT))


def requeue_orphaned(now: Any = None) -> dict[str, int]:
    now = now or timezone.now()
    stale = now - stale_after()
    counts = {"notifications_requeued": 0, "notifications_unconfirmed": 0}
    for pk, claimed_at in Notification.objects.filter(state=State.SENDING, claimed_at__lt=stale).values_list("pk", "claimed_at"):
        Notification.objects.filter(pk=pk, state=State.SENDING, claimed_at=claimed_at).update(
            state=State.PENDING,
            claimed_at=None,
            next_attempt_at=now,
            queued_at=None,
            last_error="The worker sending it was lost before the mail server took the message; sending again.",
        )
    counts["notifications_unconfirmed"] = Notification.objects.filter(state=State.HANDING_OVER, claimed_at__lt=stale).update(
        state=State.UNCONFIRMED,
        last_error="The worker was lost while the mail server took the message: it may have been delivered, so it is not sent again.",
    )
    due = Notification.objects.filter(state=State.PENDING, next_attempt_at__lte=now).filter(
        Q(queued_at__isnull=True) | Q(queued_at__lt=stale)
    )
    batch: list[str] = []
    for pk, queued_at in due.order_by("next_attempt_at").values_list("pk", "queued_at")[:REQUEUE_LIMIT]:
        if Notification.objects.filter(pk=pk, state=State.PENDING, queued_at=queued_at).update(queued_at=now):
            counts["notifications_requeued"] += 1
            batch.append(str(pk))
        if len(batch) == SEND_BATCH:
            enqueue(SEND_NOTIFICATIONS, notification_ids=batch)
            batch = []
    if batch:
        enqueue(SEND_NOTIFICATIONS, notification_ids=batch)
    return counts
