"""Nothing lost when planning goes wrong or nobody receives a message at once: a scan whose
planning failed is planned by the next tick, a timed episode taken only by digest subscribers
is not planned again and again (hiding older ones), one scope's failure holds up no digest, and
deleting rules that mailed one address for one scan keeps their history."""

from __future__ import annotations

from typing import Any

import pytest

from posture.alerts import planning, timed
from posture.alerts.rules import rule_delete, subscribe
from posture.alerts.tick import alert_tick
from posture.models import AlertRule, AlertSubscription, AlertTrigger, DigestEntry, Notification, Scan
from tests.conftest import make_user
from tests.posture.alert_kinds_fleet import kind_rule
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.test_alert_timed import silent

pytestmark = pytest.mark.django_db


def test_a_scan_whose_planning_failed_is_planned_by_the_next_tick(django_capture_on_commit_callbacks, monkeypatch) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=["soc@example.test"])
    real = planning.scan_items

    def broken(scan: Scan, rules: list[AlertRule]) -> Any:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(planning, "scan_items", broken)
    with django_capture_on_commit_callbacks(execute=False):
        planning.plan_or_warn(fleet.scan, [])
    fleet.scan.refresh_from_db()
    assert fleet.scan.alerts_pending and fleet.scan.warnings == ["Alerts could not be planned: RuntimeError: database hiccup"]
    assert not Notification.objects.exists()
    with django_capture_on_commit_callbacks(execute=False):
        assert alert_tick()["scan_alerts_still_failing"] == 1  # still failing: stays pending
    monkeypatch.setattr(planning, "scan_items", real)
    with django_capture_on_commit_callbacks(execute=False):
        assert alert_tick()["scan_alerts_retried"] == 1
        assert alert_tick()["scan_alerts_retried"] == 0  # planned once
    assert list(Notification.objects.values_list("recipient", "source")) == [("soc@example.test", f"scan:{fleet.scan.pk}")]
    assert not Scan.objects.get(pk=fleet.scan.pk).alerts_pending


def test_episodes_taken_only_as_digests_are_planned_once_each_so_older_ones_are_reached(
    django_capture_on_commit_callbacks, monkeypatch
) -> None:
    monkeypatch.setattr(timed, "EPISODES_PER_TICK", 1)
    fleet = alert_fleet()
    silent(fleet.clusters[0], 6)
    silent(fleet.clusters[1], 9)
    rule = kind_rule(AlertRule.Kind.CLUSTER_STALE, params={"hours": 4}, addresses=[])
    dora = make_user("dora", "viewer")
    dora.email = "dora@example.test"
    dora.save()
    subscribe(user=dora, rule=rule, mode=AlertSubscription.Mode.DIGEST, digest_hour=7)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=False):
            timed.plan_timed_alerts()
    assert AlertTrigger.objects.filter(rule=rule).count() == 2 and DigestEntry.objects.filter(user=dora).count() == 2
    assert not Notification.objects.exists()


def test_a_failing_scope_holds_up_neither_the_other_work_nor_the_digests(django_capture_on_commit_callbacks, monkeypatch) -> None:
    alert_fleet()

    def broken(scope_id: int) -> list[str]:
        raise RuntimeError("cursor lost")

    monkeypatch.setattr(timed, "plan_reevaluation_alerts", broken)
    with django_capture_on_commit_callbacks(execute=False):
        counts = alert_tick()
    assert counts["alert_rules_failed"] == 1 and {"digests", "cap_summaries"} <= set(counts)


def test_deleting_two_rules_that_mailed_one_address_for_one_scan_keeps_both_messages(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    first, second = regression_rule("First", addresses=["soc@example.test"]), regression_rule("Second", addresses=["soc@example.test"])
    with django_capture_on_commit_callbacks(execute=False):
        planning.plan_scan_alerts(fleet.scan)
    rule_delete(rule=first)
    rule_delete(rule=second)
    kept = Notification.objects.order_by("rule_name")
    assert [(n.rule_id, n.rule_name, n.recipient) for n in kept] == [
        (None, "First", "soc@example.test"),
        (None, "Second", "soc@example.test"),
    ]
