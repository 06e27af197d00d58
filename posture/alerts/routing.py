"""Who receives a rule's items, and the Notification rows that carry them.

planning.py decides what each rule covers; this module turns (rule, items) into one row per
recipient. Digests, the daily cap and unsubscribes belong here: they decide how and whether a
recipient gets the items, never which items a rule covers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from posture.alerts.rules import address_problem
from posture.models import AlertRule, AlertSubscription, Notification, Scan


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


def route(
    rule: AlertRule, items: list[dict[str, Any]], *, source: str, scan: Scan | None, now: Any, planned: set[Any]
) -> Iterable[Notification]:
    """The unsaved rows carrying `items` of `rule` to each of its recipients; `planned` holds the
    (rule id, recipient) pairs already written for `source`, which are skipped."""
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
            changes=items,
            message_id=message_id(pk),
            # A bad address is a clear, final state, never an endless retry.
            state=Notification.State.FAILED if problem else Notification.State.PENDING,
            last_error=problem,
            next_attempt_at=now,
            queued_at=None if problem else now,
            created_at=now,
        )
