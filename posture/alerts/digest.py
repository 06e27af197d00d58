"""Daily digests: a user who takes a rule as a digest gets its items once a day, at a UTC hour of
their choosing, in one message with every other digest rule's items.

routing.route stores a rule's items for each digest subscriber (a DigestEntry referring to the
rule's AlertTrigger, due the next time the subscription's hour comes), in the transaction that
plans the rule's other rows. The alert tick (tick.py, every few minutes) sends each user one digest holding every entry that is
due: it locks the entries, writes the digest's row and marks them in one transaction, so a tick
run twice finds nothing left, and a late tick (the workers were down at the hour) sends them at
its first run. Entries written after a digest wait for the next day's.

What the digest's unsubscribe link does: it ends every daily digest of that user (their digest
subscriptions and pending entries); immediate subscriptions stay (unsubscribe.py).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.conf import settings

from posture.alerts.text import item_severity, link, one_line, status_label
from posture.catalog.controls import SEVERITY_WEIGHTS
from posture.models import AlertRule, AlertTrigger, DigestEntry, Notification

DIGEST_NAME = "Daily digest"


def due_at(now: dt.datetime, hour: int) -> dt.datetime:
    """The first `hour`:00 UTC after `now`."""
    at = now.astimezone(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > now else at + dt.timedelta(days=1)


def store(rule: AlertRule, trigger: AlertTrigger, subscribers: list[Any], *, source: str, now: dt.datetime) -> int:
    """Keep the items of `rule`'s `trigger` (saved) for the digest of each of `subscribers` ((address, user,
    subscription), routing.subscribers); the number written (a subscriber who has these items
    for `source` already gets nothing new)."""
    entries = [
        DigestEntry(
            user=user,
            rule=rule,
            rule_name=rule.name,
            source=source,
            trigger=trigger,
            created_at=now,
            due_at=due_at(now, subscription.digest_hour),
        )
        for _, user, subscription in subscribers
    ]
    if not entries:
        return 0
    existing = set(DigestEntry.objects.filter(rule=rule, source=source).values_list("user_id", flat=True))
    fresh = [e for e in entries if e.user.pk not in existing]
    DigestEntry.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


# --- the digest's message -------------------------------------------------------------------
# A digest stays readable at any size: every change is counted per rule × severity, and per
# control within it; only a few changes are listed one by one (per rule × severity, and in the
# whole digest), and a few controls named per rule × severity, each linking to the clusters list
# filtered by it.
LISTED = 50
GROUP_LISTED = 10
CONTROLS_LISTED = 10
OTHER = "other"  # a change without a severity we know


def severity_of(change: dict[str, Any]) -> str:
    return item_severity(change) or OTHER


def _line(change: dict[str, Any]) -> dict[str, str]:
    return {
        "cluster": one_line(change.get("name") or ""),
        "url": link("cluster-detail", change["cluster"]) if change.get("cluster") is not None else "",
        "control": one_line(change.get("control") or change.get("kind") or ""),
        "from": status_label(change.get("from", "")),
        "to": status_label(change.get("to", "")),
    }


def digest_context(notification: Notification) -> dict[str, Any]:
    """Changes grouped by rule (by name), then by severity (most severe first)."""
    by_rule: dict[tuple[str, Any], dict[str, list[dict[str, Any]]]] = {}
    every = notification.items()
    for change in every:
        key = (change.get("rule") or "", change.get("rule_id"))
        by_rule.setdefault(key, {}).setdefault(severity_of(change), []).append(change)
    rules, room = [], LISTED
    for name, rule_id in sorted(by_rule, key=lambda k: (k[0].lower(), str(k[1]))):
        severities = []
        for severity, changes in sorted(by_rule[(name, rule_id)].items(), key=lambda s: -SEVERITY_WEIGHTS.get(s[0], 0)):
            changes.sort(key=lambda c: (c.get("control") or "", (c.get("name") or "").lower(), str(c.get("cluster"))))
            controls = Counter(c.get("control") or "" for c in changes)
            named = sorted(controls.items(), key=lambda c: (-c[1], c[0]))
            shown = changes[: max(min(room, GROUP_LISTED), 0)]
            room -= len(shown)
            severities.append(
                {
                    "severity": severity,
                    "count": len(changes),
                    "clusters": len({c.get("cluster") for c in changes}),
                    "controls": [
                        {"id": control, "count": n, "url": link("cluster-list", query={"control": control})}
                        for control, n in named[:CONTROLS_LISTED]
                        if control
                    ],
                    "more_controls": max(len(named) - CONTROLS_LISTED, 0),
                    "changes": [_line(c) for c in shown],
                    "more": len(changes) - len(shown),
                }
            )
        rules.append({"name": one_line(name), "count": sum(s["count"] for s in severities), "severities": severities})
    return {
        "changes": len(every),
        "rules": rules,
        "listed": LISTED - max(room, 0),
        "clusters_url": link("cluster-list"),
        "site_url": settings.SITE_URL,
    }


def cap_summary_context(notification: Notification) -> dict[str, Any]:
    return {"messages": notification.held_summary.get("messages", 0), "cap": settings.ARC_ALERT_DAILY_CAP, "site_url": settings.SITE_URL}
