"""The daily cap: at most ARC_ALERT_DAILY_CAP rule messages per recipient and UTC day.

A row over the cap is written `held` (visible in the history, never sent). What the cap held
back is summarised in the next message planned for that recipient (`held_summary`, shown by
every message's footer); when no message comes, the alert tick sends a summary of its own on a
later UTC day (tick.py). Digests and those summaries are neither counted nor held: a digest is
one message a day by construction, and the summary is the cap's own trace.

Recipients are compared without case, as routing.recipients dedupes them. Two planning runs
committing at the same moment do not see each other's rows, so they may pass the cap together
by what each plans; one run never does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Lower

from posture.models import Notification

State = Notification.State
# Kinds that neither count against the cap nor are held by it.
UNCAPPED = ("digest", "cap_summary")


def day_start(now: dt.datetime) -> dt.datetime:
    """00:00 UTC of `now`'s UTC day."""
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def count_today(counts: dict[str, int], addresses: Iterable[str], now: dt.datetime) -> None:
    """Fill `counts` (lower-case address → rule messages planned today) for the addresses it lacks."""
    missing = {a.lower() for a in addresses} - set(counts)
    if not missing:
        return
    rows = (
        Notification.objects.annotate(address=Lower("recipient"))
        .filter(address__in=missing, created_at__gte=day_start(now))
        .exclude(state=State.HELD)
        .exclude(kind__in=UNCAPPED)
        .values("address")
        .annotate(n=Count("pk"))
    )
    counts.update({address: 0 for address in missing})
    counts.update({row["address"]: row["n"] for row in rows})


def over_cap(counts: dict[str, int], address: str) -> bool:
    return counts[address.lower()] >= settings.ARC_ALERT_DAILY_CAP


def held_reason() -> str:
    return (
        f"Held back by the daily cap ({settings.ARC_ALERT_DAILY_CAP} messages a day to one recipient): "
        "summarised in the next message to this recipient."
    )


def open_held(addresses: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Held rows not yet summarised, by lower-case recipient, oldest first."""
    wanted = {a.lower() for a in addresses}
    rows = (
        Notification.objects.filter(state=State.HELD, summarised_in__isnull=True)
        .annotate(address=Lower("recipient"))
        .filter(address__in=wanted)
        .order_by("created_at", "pk")
        .values("pk", "address", "rule_name", "created_at", "item_count")
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["address"], []).append(row)
    return found


def summarise(notification: Notification, held: list[dict[str, Any]]) -> None:
    """Put a summary of `held` (rows of open_held) on `notification` (unsaved, or saved by the
    caller afterwards) and mark them summarised in it. Call inside the transaction writing it."""
    if not held:
        return
    rules: dict[str, dict[str, Any]] = {}
    for row in held:
        entry = rules.setdefault(row["rule_name"], {"rule": row["rule_name"], "messages": 0, "changes": 0})
        entry["messages"] += 1
        entry["changes"] += row["item_count"]
    notification.held_summary = {
        "messages": len(held),
        "changes": sum(r["changes"] for r in rules.values()),
        "since": held[0]["created_at"].isoformat(),
        "rules": sorted(rules.values(), key=lambda r: (-r["messages"], r["rule"])),
    }
    Notification.objects.filter(pk__in=[row["pk"] for row in held], summarised_in__isnull=True).update(summarised_in=notification.pk)
