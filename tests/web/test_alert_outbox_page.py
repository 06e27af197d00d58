"""The alert outbox page shows admins every notification with its delivery state, reasons and
change counts, everything escaped."""

from __future__ import annotations

from typing import Any

import pytest

from posture.alerts.planning import plan_scan_alerts
from posture.models import Notification
from tests.posture.alerts_fleet import alert_fleet, regression_rule

pytestmark = pytest.mark.django_db


def test_admins_see_each_notification_its_state_and_why_it_failed(admin_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posture.alerts.planning._enqueue", lambda ids: None)
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    fleet.change(3, "ARC-NP-01", "pass", "unknown")
    regression_rule("<script>alert(1)</script>", addresses=["soc@example.test", "noc@example.test"])
    plan_scan_alerts(fleet.scan)
    Notification.objects.filter(recipient="noc@example.test").update(
        state=Notification.State.FAILED, attempts=1, last_error="The mail server refused the recipient noc@example.test: 550 <nope>"
    )
    page = admin_client.get("/alerts/outbox/").content.decode()
    assert page.count('<td data-label="Changes" class="num">2</td>') == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "550 &lt;nope&gt;" in page
    assert '<span class="badge state-failed">Failed</span>' in page and '<span class="badge state-pending">Pending</span>' in page
    for notification in Notification.objects.all():
        assert notification.message_id.replace("<", "&lt;").replace(">", "&gt;") in page
