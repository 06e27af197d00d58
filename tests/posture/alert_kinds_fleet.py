"""Helpers for the tests of each kind of rule: a rule of any kind, stored scores and results the
way an evaluation writes them, and what a rule's notifications report."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from posture.alerts.rules import rule_create
from posture.models import AlertRule, Cluster, ControlResult, Scan, ScoreHistory

TO = {"addresses": ["soc@example.test"]}


def kind_rule(kind: str, name: str = "", params: dict[str, Any] | None = None, **fields: Any) -> AlertRule:
    return rule_create(user=None, name=name or kind, kind=kind, params=params or {}, **{**TO, **fields})


def scored(cluster: Cluster, before: float | None, after: float | None, scan: Scan | None) -> None:
    """The cluster's score history: `before` an hour ago (no scan), then `after` by `scan`."""
    now = timezone.now()
    if before is not None:
        ScoreHistory.objects.create(cluster=cluster, scan=None, at=now - dt.timedelta(hours=1), score=before, grade="B", coverage=90)
    ScoreHistory.objects.create(cluster=cluster, scan=scan, at=now, score=after, grade="C", coverage=90)


def result(cluster: Cluster, control: str, status: str) -> ControlResult:
    now = timezone.now()
    return ControlResult.objects.create(
        cluster=cluster, control=control, status=status, raw_status=status, reason="evidence", since=now, updated_at=now
    )


def items(rule: AlertRule) -> list[dict[str, Any]]:
    """The items of the rule's notifications, all recipients alike, in a stable order."""
    found = {repr(n.items()): n.items() for n in rule.notifications.all()}
    assert len(found) <= 1, "every recipient of a rule gets the same items"
    return sorted(found.popitem()[1], key=lambda i: (str(i["name"]), i["control"])) if found else []


def shown(rule: AlertRule) -> set[tuple[Any, ...]]:
    """(name, control, from, to) of what the rule's notifications report."""
    return {(i["name"], i["control"], i["from"], i["to"]) for i in items(rule)}
