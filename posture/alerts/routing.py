"""Who receives a rule's items, and the Notification rows that carry them (referring to the
rule's AlertTrigger, which holds the items once for all of them).

planning.py decides what each rule covers; this module turns (rule, items) into one row per
recipient. Digests, the daily cap and unsubscribes belong here: they decide how and whether a
recipient gets the items, never which items a rule covers:

- a user who takes the rule as a daily digest gets a DigestEntry instead of a row (digest.py);
- a distribution address that unsubscribed from the rule (AlertOptOut) gets nothing;
- a row over the recipient's daily cap is written `held`; the next row sent to that recipient
  carries the summary of what was held (cap.py).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model

from posture.alerts import cap, digest
from posture.alerts.rules import address_problem
from posture.models import AlertRule, AlertSubscription, AlertTrigger, Notification, Scan


def subscribers(rule: AlertRule, mode: str) -> list[tuple[str, Any, AlertSubscription]]:
    """(address, user, subscription) of the active users taking `rule` in `mode` who may view
    the posture and have an address, by user id."""
    # One query for who may view, not a permission lookup per subscriber. Permissions come from
    # ModelBackend (roles are groups); axes' backend, listed first, only refuses sign-ins.
    viewers = get_user_model().objects.with_perm(
        "posture.view_posture", is_active=True, include_superusers=True, backend="django.contrib.auth.backends.ModelBackend"
    )
    subscriptions = rule.subscribers.filter(mode=mode, user__in=viewers.values("pk")).select_related("user").order_by("user_id")
    found = []
    for subscription in subscriptions:
        user = subscription.user
        address = (user.email or "").strip()
        if address:
            found.append((address, user, subscription))
    return found


def recipients(rule: AlertRule) -> list[tuple[str, Any]]:
    """(address, user or None) of every recipient of `rule` receiving at once: active subscribed
    users who may view the posture and have an address, then the distribution addresses that did
    not unsubscribe; each address once, whatever its case. A user who chose the digest for
    themselves gets no immediate copy through a distribution address that is theirs."""
    found: dict[str, tuple[str, Any]] = {}
    for address, user, _ in subscribers(rule, AlertSubscription.Mode.IMMEDIATE):
        found.setdefault(address.lower(), (address, user))
    skip = {a.lower() for a, _, _ in subscribers(rule, AlertSubscription.Mode.DIGEST)}
    skip |= set(rule.opt_outs.values_list("address", flat=True))
    for address in rule.addresses:
        if address.lower() not in skip:
            found.setdefault(address.lower(), (address, None))
    return list(found.values())


def message_id(notification_id: uuid.UUID) -> str:
    """A Message-ID fixed when the row is planned, so every attempt sends the same one."""
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<alert.{notification_id.hex}@{domain}>"


def route(
    rule: AlertRule,
    trigger: AlertTrigger,
    *,
    source: str,
    scan: Scan | None,
    now: Any,
    planned: set[Any],
    sent_today: dict[str, int] | None = None,
) -> list[Notification]:
    """The unsaved rows carrying `trigger` (its items, saved) of `rule` to each of its recipients receiving at once;
    `planned` holds the (rule id, recipient) pairs already written for `source`, which are skipped.
    Digest subscribers' entries are written here (call inside the planning transaction).

    `sent_today` (lower-case address → rule messages planned today) is the cap's tally: a caller
    routing several rules in one transaction passes the same dict to every call, since the rows
    of earlier calls are not saved yet."""
    digest.store(rule, trigger, subscribers(rule, AlertSubscription.Mode.DIGEST), source=source, now=now)
    counts = {} if sent_today is None else sent_today
    to = [(address, user) for address, user in recipients(rule) if (rule.pk, address) not in planned]
    cap.count_today(counts, [address for address, _ in to], now)
    held = cap.open_held([address for address, _ in to])
    rows = []
    for address, user in to:
        pk = uuid.uuid4()
        problem = address_problem(address)
        capped = not problem and cap.over_cap(counts, address)
        if not problem and not capped:
            counts[address.lower()] += 1
        row = Notification(
            id=pk,
            rule=rule,
            rule_name=rule.name,
            kind=rule.kind,
            source=source,
            scan=scan,
            recipient=address,
            user=user,
            trigger=trigger,
            item_count=trigger.item_count,
            message_id=message_id(pk),
            # A bad address is a clear, final state, never an endless retry.
            state=Notification.State.FAILED if problem else Notification.State.HELD if capped else Notification.State.PENDING,
            last_error=problem or (cap.held_reason() if capped else ""),
            next_attempt_at=now,
            queued_at=None if problem or capped else now,
            created_at=now,
        )
        if row.state == Notification.State.PENDING:
            cap.summarise(row, held.pop(address.lower(), []))
        rows.append(row)
    return rows
