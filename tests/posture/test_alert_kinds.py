"""The kinds of rule planned at a scan's close: each alerts on its transition only, honours the
limits that apply to it and refuses the others, and its items carry kind and severity."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from posture.alerts.messages import build_message
from posture.alerts.planning import plan_scan_alerts
from posture.models import AlertRule, Cluster, Notification, Scan, ScanBatch
from posture.scans import start
from posture.scans.finish import finish_scan
from tests.posture.alert_kinds_fleet import items, kind_rule, result, scored, shown
from tests.posture.alerts_fleet import HOSTILE_NAME, alert_fleet, regression_rule
from tests.web.conftest import SUB, SUB2, finished_scan

pytestmark = pytest.mark.django_db
Kind = AlertRule.Kind


def plan(scan: Any, capture: Any) -> list[str]:
    with capture(execute=False):
        return plan_scan_alerts(scan)


def html(message: EmailMultiAlternatives) -> str:
    return next(content for content, mimetype in message.alternatives if mimetype == "text/html")


def test_regression_items_carry_their_kind_and_the_controls_severity(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    event = fleet.change(0, "ARC-NP-01", "pass", "fail")
    rule = regression_rule(addresses=["soc@example.test"])
    plan(fleet.scan, django_capture_on_commit_callbacks)
    assert items(rule) == [
        {
            "kind": "control_regression",
            "severity": "high",
            "cluster": fleet.clusters[0].pk,
            "name": "alpha",
            "control": "ARC-NP-01",
            "from": "pass",
            "to": "fail",
            "event": event.pk,
        }
    ]


def test_a_score_drop_alerts_by_points_lost_or_on_crossing_below_the_threshold(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    alpha, bravo, charlie, hostile = fleet.clusters
    scored(alpha, 90, 70, fleet.scan)  # lost 20 points and crossed below 75
    scored(bravo, 60, 55, fleet.scan)  # lost 5, already below 75 before: a standing low score
    scored(charlie, 80, 85, fleet.scan)  # rose
    scored(hostile, None, 40, fleet.scan)  # a first score compares with nothing
    drop = kind_rule(Kind.SCORE_DROP, "drop", {"drop": 10})
    below = kind_rule(Kind.SCORE_DROP, "below", {"below": 75})
    small = kind_rule(Kind.SCORE_DROP, "small drops", {"drop": 5})
    sub2 = kind_rule(Kind.SCORE_DROP, "sub2", {"drop": 1}, subscriptions=[SUB2])
    plan(fleet.scan, django_capture_on_commit_callbacks)
    assert shown(drop) == {("alpha", "", "90", "70")}
    assert shown(below) == {("alpha", "", "90", "70")}
    assert shown(small) == {("alpha", "", "90", "70"), ("bravo", "", "60", "55")}
    assert shown(sub2) == set()
    assert items(drop)[0]["kind"] == "score_drop" and items(drop)[0]["severity"] == "medium"
    message = build_message(drop.notifications.get())
    assert message.subject == "[Arc Posture] drop: score dropped on 1 cluster"
    assert "  * alpha: 90 -> 70\n" in message.body


def test_private_link_alerts_when_it_is_disabled_or_its_scope_opens_public_access(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-PL-01", "pass", "fail")  # disabled
    fleet.change(1, "ARC-PL-02", "pass", "fail")  # the scope opened public access
    fleet.change(2, "ARC-PL-01", "not_applicable", "fail")  # left the gateway: not a Private Link change
    fleet.change(3, "ARC-PL-02", "pass", "unknown")  # unknown: a regression, not an opening
    both = kind_rule(Kind.PRIVATE_LINK, "both")
    opened = kind_rule(Kind.PRIVATE_LINK, "opened", {"changes": ["public_access"]})
    plan(fleet.scan, django_capture_on_commit_callbacks)
    assert shown(both) == {("alpha", "ARC-PL-01", "pass", "fail"), ("bravo", "ARC-PL-02", "pass", "fail")}
    assert shown(opened) == {("bravo", "ARC-PL-02", "pass", "fail")}
    assert [i["change"] for i in items(opened)] == ["Private Link Scope opened public network access"]
    assert "Private Link Scope opened public network access" in build_message(opened.notifications.get()).body


def test_a_new_cluster_failing_a_severe_enough_control_alerts_and_a_known_one_does_not(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    alpha, bravo, charlie, _ = fleet.clusters
    earlier = finished_scan(fleet.scope, [SUB, SUB2])  # the scope's inventory was taken before
    Scan.objects.filter(pk=earlier.pk).update(created_at=fleet.scan.created_at - dt.timedelta(days=1))
    Cluster.objects.filter(pk=charlie.pk).update(first_seen_at=fleet.scan.started_at - dt.timedelta(days=3))  # seen before
    result(alpha, "ARC-NP-01", "fail")  # high
    result(alpha, "ARC-PL-01", "fail")  # medium
    result(bravo, "ARC-NP-02", "pass")
    result(bravo, "ARC-PL-02", "unknown")
    result(charlie, "ARC-NP-01", "fail")  # a standing failure of a known cluster
    high = kind_rule(Kind.NEW_FAILING_CLUSTER, "high", {"min_severity": "high"})
    any_severity = kind_rule(Kind.NEW_FAILING_CLUSTER, "any")
    plan(fleet.scan, django_capture_on_commit_callbacks)
    assert shown(high) == {("alpha", "ARC-NP-01", "new", "fail")}
    assert shown(any_severity) == {("alpha", "ARC-NP-01", "new", "fail"), ("alpha", "ARC-PL-01", "new", "fail")}
    message = build_message(any_severity.notifications.get())
    assert message.subject == "[Arc Posture] any: 1 new cluster failing 2 controls (ARC-NP-01, ARC-PL-01)"
    assert "  * alpha: New cluster -> Fail\n" in message.body


def test_a_scopes_first_scan_finds_every_cluster_new_and_alerts_on_none(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    result(fleet.clusters[0], "ARC-NP-01", "fail")
    rule = kind_rule(Kind.NEW_FAILING_CLUSTER)
    assert plan(fleet.scan, django_capture_on_commit_callbacks) == []
    assert not rule.notifications.exists()


def closing(scope: Any, batch_state: str, error: str = "", wait: float = 0) -> Scan:
    """A scan of `scope` whose one batch ended `batch_state`, waiting for its finish."""
    now = timezone.now()
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, started_at=now, heartbeat_at=now, quota_wait_seconds=wait)
    ScanBatch.objects.create(scan=scan, number=1, subscriptions=[SUB], state=batch_state, error=error, finished_at=now)
    return scan


def test_a_failed_or_long_throttled_scan_alerts_when_it_closes(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    failed_rule = kind_rule(Kind.SCAN_FAILED, "failed")
    throttled = kind_rule(Kind.SCAN_FAILED, "throttled", {"failed": False, "throttled_minutes": 15})
    elsewhere = kind_rule(Kind.SCAN_FAILED, "elsewhere", scopes=[alert_fleet("other").scope.pk])
    hostile_error = f"ARG said: {HOSTILE_NAME}"
    failed = closing(fleet.scope, ScanBatch.State.FAILED, error=hostile_error)
    slow = closing(fleet.scope, ScanBatch.State.DONE, wait=16 * 60)
    quick = closing(fleet.scope, ScanBatch.State.DONE, wait=14 * 60)
    with django_capture_on_commit_callbacks(execute=False):
        for scan in (failed, slow, quick):
            finish_scan(str(scan.pk))
    assert Scan.objects.get(pk=failed.pk).state == Scan.State.FAILED
    assert sorted((n.rule.name, n.scan_id) for n in Notification.objects.all()) == sorted([("failed", failed.pk), ("throttled", slow.pk)])
    assert not elsewhere.notifications.exists()
    message = build_message(failed_rule.notifications.get())
    assert message.subject == "[Arc Posture] failed: scan of corp failed"
    assert "\n" not in message.subject and "evil" not in str(message.message()["Subject"])
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;" in html(message) and "<b onmouseover" not in html(message)
    assert '<th align="left">Detail</th>' in html(message)  # the scan's error has a column
    assert "ARG said: evil  Bcc: attacker@evil.test  X-Injected: 1" in message.body  # one line: no forged lines
    assert build_message(throttled.notifications.get()).subject == "[Arc Posture] throttled: scan of corp succeeded, throttled 16 min"


def test_a_scan_that_fails_at_its_start_alerts_too(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    rule = kind_rule(Kind.SCAN_FAILED)
    now = timezone.now()
    scan = Scan.objects.create(scope=fleet.scope, state=Scan.State.RUNNING, started_at=now, heartbeat_at=now)
    with django_capture_on_commit_callbacks(execute=False):
        start._fail_scan(scan, "Could not list the subscriptions")  # where start_scan ends a scan it cannot begin
    assert [(i["name"], i["to"], i["error"]) for i in items(rule)] == [("corp", "failed", "Could not list the subscriptions")]


def test_a_second_planning_of_every_kind_writes_nothing_new(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-PL-01", "pass", "fail")
    scored(fleet.clusters[1], 90, 50, fleet.scan)
    result(fleet.clusters[2], "ARC-NP-01", "fail")
    earlier = finished_scan(fleet.scope, [SUB])
    Scan.objects.filter(pk=earlier.pk).update(created_at=fleet.scan.created_at - dt.timedelta(days=1))
    Scan.objects.filter(pk=fleet.scan.pk).update(state=Scan.State.FAILED)
    fleet.scan.refresh_from_db()
    for kind in (Kind.CONTROL_REGRESSION, Kind.SCORE_DROP, Kind.PRIVATE_LINK, Kind.NEW_FAILING_CLUSTER, Kind.SCAN_FAILED):
        kind_rule(kind, params={"drop": 10} if kind == Kind.SCORE_DROP else {})
    assert len(plan(fleet.scan, django_capture_on_commit_callbacks)) == 5
    assert plan(fleet.scan, django_capture_on_commit_callbacks) == []
    assert Notification.objects.count() == 5


@pytest.mark.parametrize(
    ("kind", "params", "fields", "errors"),
    [
        (Kind.SCAN_FAILED, {}, {"subscriptions": [SUB], "tags": [{"key": "env", "value": None}]}, ["subscriptions", "tags"]),
        (Kind.SCORE_DROP, {"drop": 5}, {"controls": ["ARC-NP-01"], "severities": ["high"]}, ["controls", "severities"]),
        (Kind.CLUSTER_STALE, {"hours": 4}, {"severities": ["high"]}, ["severities"]),
        (Kind.GOVERNANCE_EXPIRY, {"days": 7}, {"severities": ["low"]}, ["severities"]),
        (Kind.PRIVATE_LINK, {}, {"controls": ["ARC-NP-01"]}, ["controls"]),
    ],
)
def test_limits_a_kind_cannot_apply_are_refused(kind: str, params: dict, fields: dict, errors: list[str]) -> None:
    with pytest.raises(ValidationError) as refused:
        kind_rule(kind, params=params, **fields)
    assert sorted(refused.value.message_dict) == errors
    assert all("cannot be limited" in m or "watches" in m for field in errors for m in refused.value.message_dict[field])


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        (Kind.SCORE_DROP, {}, "Give drop (points lost in one evaluation), below (a score threshold), or both."),
        (Kind.SCORE_DROP, {"drop": "10"}, "drop must be a number from 0.1 to 100, not '10'."),
        (Kind.CLUSTER_STALE, {"hours": 0}, "hours must be a whole number from 1 to 2160, not 0."),
        (Kind.CLUSTER_STALE, {}, "Give hours: how long a cluster is stale or offline before the alert."),
        (Kind.PRIVATE_LINK, {"changes": ["open"]}, "changes must be a non-empty list of disabled, public_access, not ['open']."),
        (Kind.GOVERNANCE_EXPIRY, {"days": 7, "records": []}, "records must be a non-empty list of attestations, exceptions, not []."),
        (Kind.SCAN_FAILED, {"failed": False}, "Alert on failed scans, on throttled ones (throttled_minutes), or both."),
        (Kind.NEW_FAILING_CLUSTER, {"min_severity": "low", "x": 1}, "Unknown parameters for this kind: x."),
    ],
)
def test_bad_parameters_are_refused_with_what_is_wrong(kind: str, params: dict, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        kind_rule(kind, params=params)
    assert refused.value.message_dict == {"params": [message]}
