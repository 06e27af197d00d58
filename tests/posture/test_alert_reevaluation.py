"""Re-evaluations without a scan (after governance changes, lapses, catalog changes) alert on
their regressions once: after the run, or from the tick when the process died first; a
re-evaluation that changes nothing alerts on nothing."""

from __future__ import annotations

from typing import Any

import pytest

from posture import normalize
from posture.alerts import reevaluation
from posture.alerts.reevaluation import plan_reevaluation_alerts
from posture.alerts.timed import plan_timed_alerts
from posture.models import AlertCursor, AlertRule, ChangeEvent, Cluster, Notification
from posture.scans.evaluation import evaluate_scope
from posture.tasks import evaluate_scopes
from tests.posture.alert_kinds_fleet import kind_rule, shown
from tests.posture.alerts_fleet import AlertFleet, alert_fleet, regression_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluated(django_capture_on_commit_callbacks: Any) -> AlertFleet:
    """The fleet evaluated by its scan, every alert of it planned."""
    fleet = alert_fleet()
    evaluate_scope(fleet.scope.pk, scan=fleet.scan)
    with django_capture_on_commit_callbacks(execute=False):
        assert plan_reevaluation_alerts(fleet.scope.pk) == []
    return fleet


def disable_private_link(cluster: Cluster) -> None:
    """What a later scan would store; the re-evaluation then sees new facts."""
    cluster.refresh_from_db()
    facts = dict(cluster.facts, private_link_state="Disabled", private_link_scope_id=None)
    Cluster.objects.filter(pk=cluster.pk).update(facts=facts, facts_hash=normalize.fact_hash(facts))


def test_a_reevaluation_that_regresses_alerts_once_after_the_run(evaluated: AlertFleet, django_capture_on_commit_callbacks) -> None:
    rule = regression_rule(controls=["ARC-PL-01"], addresses=["soc@example.test"])
    drop = kind_rule(AlertRule.Kind.SCORE_DROP, params={"drop": 1})
    disable_private_link(evaluated.clusters[0])
    with django_capture_on_commit_callbacks(execute=False):
        evaluate_scopes(scope_ids=[evaluated.scope.pk])  # the task governance changes queue
    last = ChangeEvent.objects.filter(scan__isnull=True).latest("pk")
    assert shown(rule) == {("alpha", "ARC-PL-01", "pass", "fail")}
    (notification,) = rule.notifications.all()
    assert notification.scan_id is None and notification.source == f"reevaluation:{evaluated.scope.pk}:{last.pk}"
    ((name, control, before, after),) = shown(drop)
    assert (name, control) == ("alpha", "") and float(before) > float(after)
    with django_capture_on_commit_callbacks(execute=False):
        assert plan_reevaluation_alerts(evaluated.scope.pk) == []
        assert plan_timed_alerts()["reevaluation_alerts_planned"] == 0
    assert Notification.objects.count() == 2


def test_a_reevaluation_that_changes_nothing_alerts_on_nothing(evaluated: AlertFleet, django_capture_on_commit_callbacks) -> None:
    regression_rule(addresses=["soc@example.test"])
    kind_rule(AlertRule.Kind.SCORE_DROP, params={"drop": 0.1})
    with django_capture_on_commit_callbacks(execute=False):
        evaluate_scopes(scope_ids=[evaluated.scope.pk])
        plan_timed_alerts()
    assert not ChangeEvent.objects.filter(scan__isnull=True).exists()
    assert not Notification.objects.exists()


def test_the_tick_plans_what_a_process_that_died_after_its_run_left(evaluated: AlertFleet, django_capture_on_commit_callbacks) -> None:
    rule = regression_rule(addresses=["soc@example.test"])
    disable_private_link(evaluated.clusters[0])
    evaluate_scope(evaluated.scope.pk)  # the worker died here, before planning
    with django_capture_on_commit_callbacks(execute=False):
        assert plan_timed_alerts()["reevaluation_alerts_planned"] == 1
    assert ("alpha", "ARC-PL-01", "pass", "fail") in shown(rule)


def test_a_planning_that_fails_leaves_the_cursor_and_the_next_one_plans_the_events(
    evaluated: AlertFleet, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    rule = regression_rule(addresses=["soc@example.test"])
    disable_private_link(evaluated.clusters[0])
    evaluate_scope(evaluated.scope.pk)
    before = AlertCursor.objects.get(scope=evaluated.scope).last_event_id

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("killed")

    monkeypatch.setattr(reevaluation, "write_notifications", broken)
    with pytest.raises(RuntimeError):
        plan_reevaluation_alerts(evaluated.scope.pk)
    assert AlertCursor.objects.get(scope=evaluated.scope).last_event_id == before
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=False):
        assert len(plan_reevaluation_alerts(evaluated.scope.pk)) == 1
    assert AlertCursor.objects.get(scope=evaluated.scope).last_event_id == ChangeEvent.objects.latest("pk").pk
    assert ("alpha", "ARC-PL-01", "pass", "fail") in shown(rule)


def test_scan_events_are_left_to_the_scans_close_and_other_scopes_to_their_cursor(
    evaluated: AlertFleet, django_capture_on_commit_callbacks
) -> None:
    rule = regression_rule(addresses=["soc@example.test"])
    evaluated.change(1, "ARC-NP-01", "pass", "fail")  # a scan's event: planned when that scan closes
    other = alert_fleet("other")
    evaluate_scope(other.scope.pk, scan=other.scan)
    disable_private_link(other.clusters[0])
    evaluate_scope(other.scope.pk)
    with django_capture_on_commit_callbacks(execute=False):
        assert plan_reevaluation_alerts(evaluated.scope.pk) == []
        assert len(plan_reevaluation_alerts(other.scope.pk)) == 1
    assert ("alpha", "ARC-PL-01", "pass", "fail") in shown(rule)
    assert ("bravo", "ARC-NP-01", "pass", "fail") not in shown(rule)
    assert rule.notifications.get().source.startswith(f"reevaluation:{other.scope.pk}:")
    ChangeEvent.objects.filter(scan=evaluated.scan).update(scan=None)  # its scan deleted since (SET NULL)
    with django_capture_on_commit_callbacks(execute=False):
        assert plan_reevaluation_alerts(evaluated.scope.pk) == []  # the cursor passed it already


def test_a_large_run_is_planned_in_several_transactions(evaluated: AlertFleet, django_capture_on_commit_callbacks, monkeypatch) -> None:
    monkeypatch.setattr(reevaluation, "EVENTS_PER_RUN", 2)
    rule = regression_rule(addresses=["soc@example.test"])
    for n, control in enumerate(("ARC-NP-01", "ARC-NP-02", "ARC-PL-01")):
        evaluated.change(n, control, "pass", "fail", scan=None)
    ChangeEvent.objects.filter(scan=evaluated.scan).update(scan=None)
    with django_capture_on_commit_callbacks(execute=False):
        assert len(plan_reevaluation_alerts(evaluated.scope.pk)) == 2
    assert sorted(len(n.items()) for n in rule.notifications.all()) == [1, 2]
