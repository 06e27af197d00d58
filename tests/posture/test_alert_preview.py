"""The preview of a rule: what it would have sent for the last scan of each scope it covers, the
same messages a real send builds, and nothing written or queued."""

from __future__ import annotations

from typing import Any

import pytest

from posture.alerts.messages import build_message
from posture.alerts.planning import plan_scan_alerts
from posture.alerts.preview import preview_rule
from posture.alerts.rules import subscribe
from posture.models import AlertRule, Notification
from tests.conftest import make_user
from tests.posture.alerts_fleet import HOSTILE_NAME, alert_fleet, regression_rule
from tests.web.conftest import SUB, finished_scan

pytestmark = pytest.mark.django_db


def test_the_preview_is_what_the_scan_later_sends_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posture.alerts.planning._enqueue", lambda ids: None)
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    fleet.change(3, "ARC-NP-01", "pass", "unknown")
    fleet.change(1, "ARC-NP-01", "fail", "unknown")  # not a regression
    rule = regression_rule("Network policies", addresses=["soc@example.test"])
    vera = make_user("vera", "viewer")
    vera.email = "vera@example.test"
    vera.save()
    subscribe(user=vera, rule=rule)

    previews = preview_rule(rule)
    assert Notification.objects.count() == 0
    assert [p.recipient for p in previews] == ["vera@example.test", "soc@example.test"]

    plan_scan_alerts(fleet.scan)
    for preview in previews:
        sent = build_message(Notification.objects.get(recipient=preview.recipient))
        html = next(content for content, mimetype in sent.alternatives if mimetype == "text/html")
        assert (preview.subject, preview.text, preview.html) == (sent.subject, sent.body, html)
    assert "alpha" in previews[0].text and "bravo" not in previews[0].text
    assert HOSTILE_NAME not in previews[0].html and "&lt;b onmouseover=" in previews[0].html


def test_only_the_latest_finished_scan_of_each_covered_scope_is_previewed() -> None:
    fleet = alert_fleet()
    other = alert_fleet("lab")
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    other.change(0, "ARC-NP-01", "pass", "fail")
    rule = regression_rule(addresses=["soc@example.test"], scopes=[other.scope.pk])
    [preview] = preview_rule(rule)
    assert f"/clusters/{other.clusters[0].pk}/" in preview.text and f"/clusters/{fleet.clusters[0].pk}/" not in preview.text
    assert len(preview_rule(regression_rule("Everywhere", addresses=["soc@example.test"]))) == 2  # one per scope
    finished_scan(other.scope, [SUB])  # a later scan of lab, with no change: nothing to preview
    assert preview_rule(rule) == []


def test_an_unsaved_rule_previews_for_its_addresses_only(settings: Any) -> None:
    fleet = alert_fleet()
    fleet.change(2, "ARC-NP-01", "pass", "fail")
    rule = AlertRule(name="Draft", kind=AlertRule.Kind.CONTROL_REGRESSION, params={"min_severity": "low"}, addresses=["noc@example.test"])
    [preview] = preview_rule(rule)
    assert preview.recipient == "noc@example.test" and "charlie" in preview.text and "Draft" in preview.subject
    rule.severities = ["low"]  # ARC-NP-01 is not a low control
    assert preview_rule(rule) == []
