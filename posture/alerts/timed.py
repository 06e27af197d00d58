"""Alerts that time raises, not a scan: a cluster stale or offline for more than N hours, an
attestation or exception about to expire or expired. `plan_timed_alerts(now)` is called by the
periodic tick; it also catches up re-evaluation alerts a dead process left (reevaluation.py).

Each alert is one notification per episode, keyed by its `source`:
- "stale:<cluster>:<episode start>": the episode starts at the cluster's last contact (or, never
  contacted, when it was first seen); a contact ends it, and the next silence is a new episode;
- "expiry:<attestation|exception>:<id>:<expiry>:<expiring|expired>": a changed expiry is a new
  record for alerts, and each record warns once before and once after it lapses.
An episode that has any row of the rule (whoever received it) is never planned again, so a later
subscriber does not receive old episodes. The rule's row is locked while its tick plans, so two
ticks take turns and the second finds the rows of the first.

Staleness is the product's own (posture/evaluate/context.py Context.is_stale: Offline, Expired,
AgentNotInstalled, or silent longer than ARC_STALE_AFTER_HOURS), on the stored contact columns.

What "standing" means here: an expired record alerts only if it expired after the rule was
created (the rule saw it lapse); an expiring one alerts as soon as it is within the warning, as
a rule is made to warn ahead. A cluster already silent when its rule is created alerts once.

Work per tick: candidates are read in pages of PAGE along the (last_connectivity_at, id) index
of current clusters, newest silence first, with one indexed look-up of the rule's sources per
page; at most EPISODES_PER_TICK new episodes are planned per rule, the next tick takes the rest.
Every stale cluster is read each tick (a cluster first scanned while long offline is a new
episode however old its silence): 100,000 stale clusters are 50 pages, two queries each.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from posture.alerts import triggers
from posture.alerts.kinds import KIND_SEVERITY, TIMED_KINDS, Kind
from posture.alerts.planning import write_notifications
from posture.alerts.reevaluation import plan_reevaluation_alerts
from posture.alerts.rules import covers
from posture.evaluate.context import STALE_STATUSES, Context
from posture.models import AlertRule, AlertTrigger, Attestation, Cluster, RiskException, Scope

log = logging.getLogger(__name__)

EPISODES_PER_TICK = 200
PAGE = 2000


def plan_timed_alerts(now: dt.datetime | None = None) -> dict[str, int]:
    """Plan every rule's new time-based episodes, then the re-evaluation alerts not planned yet."""
    now = now or timezone.now()
    planned = 0
    failed = 0
    for pk in AlertRule.objects.filter(enabled=True, kind__in=TIMED_KINDS).order_by("pk").values_list("pk", flat=True):
        try:
            planned += _plan_rule(pk, now)
        except Exception:  # noqa: BLE001 - one rule's failure holds up neither the others nor the tick
            failed += 1
            log.exception("rule %s: timed alerts could not be planned; the next tick retries", pk)
    reevaluated = 0
    for pk in Scope.objects.values_list("pk", flat=True):
        try:
            reevaluated += len(plan_reevaluation_alerts(pk))
        except Exception:  # noqa: BLE001 - one scope's failure holds up neither the others nor the tick
            failed += 1
            log.exception("scope %s: re-evaluation alerts could not be planned; the next tick retries", pk)
    return {"alert_episodes_planned": planned, "alert_rules_failed": failed, "reevaluation_alerts_planned": reevaluated}


def _plan_rule(pk: int, now: dt.datetime) -> int:
    planned = 0
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().filter(pk=pk, enabled=True).first()  # one tick at a time per rule
        if rule is None:
            return 0
        for source, candidate in new_episodes(rule, now, limit=EPISODES_PER_TICK):
            planned += bool(write_notifications([rule], {rule.pk: [triggers.item(candidate)]}, source=source, scan=None, now=now))
    return planned


def new_episodes(rule: AlertRule, now: dt.datetime, limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(source, candidate) of the episodes `rule` covers and has not alerted yet, oldest first."""
    found: list[tuple[str, dict[str, Any]]] = []
    pages = _stale_pages(rule, now) if rule.kind == Kind.CLUSTER_STALE else _expiry_pages(rule, now)
    for page in pages:
        page = [(source, c) for source, c in page if covers(rule, c)]
        done = set()
        if rule.pk is not None:  # an unsaved rule (a preview) alerted nothing yet
            # Its trigger is written whoever receives it (digest subscribers only, or no one yet).
            done = set(AlertTrigger.objects.filter(rule=rule, source__in=[s for s, _ in page]).values_list("source", flat=True))
        found += [(source, c) for source, c in page if source not in done]
        if limit is not None and len(found) >= limit:
            return found[:limit]
    return found


# --- stale or offline -----------------------------------------------------------------------------
def _stale_pages(rule: AlertRule, now: dt.datetime) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    hours = rule.params["hours"]
    ctx = Context(now=now, stale_after=dt.timedelta(hours=settings.ARC_STALE_AFTER_HOURS))
    cutoff = now - dt.timedelta(hours=hours)
    current = Cluster.objects.filter(removed_at__isnull=True)
    if rule.scopes:
        current = current.filter(scope_id__in=rule.scopes)
    columns = ("pk", "name", "scope_id", "subscription_id", "resource_group", "tags", "connectivity_status", "last_connectivity_at")
    # Contacted clusters silent since before the cutoff, along the contact index, and stale by
    # status or by the product's threshold (checked again below with Context.is_stale).
    silent = current.filter(last_connectivity_at__lte=cutoff).filter(
        Q(connectivity_status__in=STALE_STATUSES) | Q(last_connectivity_at__lt=now - ctx.stale_after)
    )
    # Newest silences first: a new episode is one that just crossed the rule's hours, so it is
    # on the first pages and EPISODES_PER_TICK keeps the newest when a tick must stop early.
    after: tuple[Any, int] | None = None
    while True:
        page = silent.order_by("-last_connectivity_at", "-pk")
        if after:
            page = page.filter(Q(last_connectivity_at__lt=after[0]) | Q(last_connectivity_at=after[0], pk__lt=after[1]))
        rows = list(page.values(*columns)[:PAGE])
        if not rows:
            break
        after = (rows[-1]["last_connectivity_at"], rows[-1]["pk"])
        yield [
            _stale(row, row["last_connectivity_at"], hours)
            for row in rows
            if ctx.is_stale(row["connectivity_status"] or None, row["last_connectivity_at"])
        ]
    # Never contacted, and Offline/Expired/AgentNotInstalled since it was first seen: few.
    never = current.filter(last_connectivity_at__isnull=True, connectivity_status__in=STALE_STATUSES, first_seen_at__lte=cutoff)
    for start in range(0, 100_000, PAGE):
        rows = list(never.order_by("pk").values(*columns, "first_seen_at")[start : start + PAGE])
        if not rows:
            break
        yield [_stale(row, row["first_seen_at"], hours) for row in rows]


def _stale(row: dict[str, Any], since: dt.datetime, hours: int) -> tuple[str, dict[str, Any]]:
    candidate = {
        "kind": Kind.CLUSTER_STALE,
        "severity": KIND_SEVERITY[Kind.CLUSTER_STALE],
        "cluster": row["pk"],
        "name": row["name"],
        "control": "",
        "from": f"last contact {since:%Y-%m-%d %H:%M} UTC",
        "to": row["connectivity_status"] or "silent",
        "since": since.isoformat(),
        "hours": hours,
        "scope_id": row["scope_id"],
        "subscription_id": row["subscription_id"],
        "resource_group": row["resource_group"],
        "tags": row["tags"],
    }
    return f"stale:{row['pk']}:{since.isoformat()}", candidate


# --- attestations and exceptions expiring ---------------------------------------------------------
def _expiry_pages(rule: AlertRule, now: dt.datetime) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    days = rule.params["days"]
    live = {
        "attestations": ("attestation", Attestation.objects.filter(revoked_at__isnull=True)),
        "exceptions": ("exception", RiskException.objects.filter(state=RiskException.State.APPROVED)),
    }
    for records in rule.params["records"]:
        label, queryset = live[records]
        queryset = queryset.select_related("cluster").order_by("expires_at", "pk")
        phases = [("expired", queryset.filter(expires_at__lte=now, expires_at__gt=rule.created_at or now))]
        if days:
            phases.append(("expiring", queryset.filter(expires_at__gt=now, expires_at__lte=now + dt.timedelta(days=days))))
        for phase, found in phases:
            for start in range(0, 100_000, PAGE):
                chunk = list(found[start : start + PAGE])
                if not chunk:
                    break
                scopes = _scopes_of_subscriptions({r.subscription_id for r in chunk if r.subscription_id})
                yield [_expiry(label, record, phase, now, scopes) for record in chunk]


def _scopes_of_subscriptions(subscriptions: set[str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    if subscriptions:
        rows = (
            Cluster.objects.filter(subscription_id__in=subscriptions, removed_at__isnull=True)
            .order_by()
            .values_list("subscription_id", "scope_id")
        )
        for subscription, scope in rows.distinct():
            found.setdefault(subscription, set()).add(scope)
    return found


def _expiry(label: str, record: Any, phase: str, now: dt.datetime, scopes: dict[str, set[int]]) -> tuple[str, dict[str, Any]]:
    """A record's candidate: a cluster target matches limits as its cluster; a subscription
    target by its subscription (and resource group) and the scopes holding clusters there; a tag
    target by its tag, in any scope."""
    cluster = record.cluster if record.cluster_id else None
    if cluster is not None:
        target = {
            "scope_id": cluster.scope_id,
            "subscription_id": cluster.subscription_id,
            "resource_group": cluster.resource_group,
            "tags": cluster.tags,
        }
    elif record.subscription_id:
        target = {
            "scope_ids": scopes.get(record.subscription_id, set()),
            "subscription_id": record.subscription_id,
            "resource_group": record.resource_group,
        }
    else:
        target = {"scope_ids": None, "tags": {record.tag_key: record.tag_value}}
    left = record.expires_at - now
    to = "expired" if phase == "expired" else f"expires in {left.days} d {left.seconds // 3600} h"
    candidate = {
        "kind": Kind.GOVERNANCE_EXPIRY,
        "severity": KIND_SEVERITY[Kind.GOVERNANCE_EXPIRY],
        "cluster": record.cluster_id,
        "name": record.target_label,
        "control": record.control,
        "from": "Active",
        "to": to,
        "note": f"{label} {record.pk}, expiry {record.expires_at:%Y-%m-%d %H:%M} UTC",
        "record": label,
        "record_id": record.pk,
        "phase": phase,
        "expires_at": record.expires_at.isoformat(),
        **target,
    }
    return f"expiry:{label}:{record.pk}:{record.expires_at.isoformat()}:{phase}", candidate
