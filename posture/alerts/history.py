"""The alert history: who may see which notification, and resending one that did not arrive.

A resend is a new Notification row (new Message-ID, source "resend:<old id>:<n>"), never the old
row reopened: the old row's state is the record of what happened to it, and reopening an
`unconfirmed` one would break at-most-once for the Message-ID the server may already hold.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from kombu.exceptions import OperationalError

from posture.alerts.routing import message_id
from posture.alerts.rules import address_problem
from posture.models import Notification
from posture.task_queue import SEND_NOTIFICATION, enqueue

log = logging.getLogger(__name__)

RESENDABLE = (Notification.State.FAILED, Notification.State.UNCONFIRMED)


def sees_everything(user: Any) -> bool:
    return bool(user.has_perm("posture.manage_users"))


def notifications_for(user: Any, *, state: str = "", rule: int | None = None) -> QuerySet[Notification]:
    """The notifications `user` may see, newest first: all of them for an admin, otherwise those
    sent to them as a subscriber or to their own address."""
    rows = Notification.objects.all()
    if not sees_everything(user):
        own = Q(user=user)
        if (user.email or "").strip():
            # lower(recipient), as the index notification_recipient_recent has it
            rows = rows.alias(address=Lower("recipient"))
            own |= Q(address=user.email.strip().lower())
        rows = rows.filter(own)
    if state:
        rows = rows.filter(state=state)
    if rule is not None:
        rows = rows.filter(rule_id=rule)
    return rows.order_by("-created_at", "recipient")


def resend(*, notification: Notification) -> Notification:
    """A new row carrying `notification`'s items to the same recipient, queued once this commits.
    Only a failed or unconfirmed notification is resent (an unconfirmed one may have arrived)."""
    with transaction.atomic():
        # Locked, so two resends at once number themselves 1 and 2, not both 1.
        old = Notification.objects.select_for_update().get(pk=notification.pk)
        if old.state not in RESENDABLE:
            state = old.get_state_display().lower()
            raise ValidationError(f"Only a failed or unconfirmed notification can be resent; this one is {state}.")
        if problem := address_problem(old.recipient):
            raise ValidationError(f"Not resent: {problem}")
        number = Notification.objects.filter(source__startswith=f"resend:{old.pk}:").count() + 1
        now = timezone.now()
        pk = uuid.uuid4()
        new = Notification.objects.create(
            id=pk,
            rule_id=old.rule_id,
            rule_name=old.rule_name,
            kind=old.kind,
            source=f"resend:{old.pk}:{number}",
            scan_id=old.scan_id,
            recipient=old.recipient,
            user_id=old.user_id,
            trigger_id=old.trigger_id,
            changes=old.changes,
            item_count=old.item_count,
            message_id=message_id(pk),
            next_attempt_at=now,
            queued_at=now,
            created_at=now,
        )
        transaction.on_commit(lambda: _enqueue(str(pk)))
    return new


def _enqueue(notification_id: str) -> None:
    try:
        enqueue(SEND_NOTIFICATION, notification_id=notification_id)
    except (OperationalError, OSError) as exc:  # the broker is down: the watchdog (outbox.py) queues it
        log.warning("could not queue resent notification %s (%s); the watchdog will", notification_id, type(exc).__name__)
