"""The daily cap: past ARC_ALERT_DAILY_CAP messages to one recipient in a UTC day, rows are held
(visible, never sent), and what was held is summarised in the next message to that recipient,
or in a summary the alert tick sends the next day when no message comes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from posture.alerts.planning import plan_scan_alerts
from posture.alerts.rules import subscribe
from posture.alerts.tick import alert_tick
from posture.models import AlertSubscription, DigestEntry, Notification
from tests.conftest import make_user
from tests.posture.alerts_fleet import AlertFleet, alert_fleet, regression_rule
from tests.posture.mail_server import MailServer
from tests.web.conftest import SUB, SUB2, finished_scan

pytestmark = pytest.mark.django_db

State = Notification.State
SITE = "https://arc.example.test/posture"


def messages_written() -> dict[str, int]:
    """The tick's digests and cap summaries (it plans time-based alerts too: none here)."""
    counts = alert_tick()
    return {"digests": counts["digests"], "cap_summaries": counts["cap_summaries"]}


@pytest.fixture
def capped(settings: Any) -> AlertFleet:
    """A cap of two a day, and three rules mailing soc@ about one regression each."""
    settings.ARC_ALERT_DAILY_CAP = 2
    fleet = alert_fleet()
    for n, control in enumerate(("ARC-NP-01", "ARC-PL-01", "ARC-NET-01")):
        fleet.change(n, control, "pass", "fail")
        regression_rule(f"Rule {control}", controls=[control], addresses=["soc@example.test"])
    regression_rule("Other recipient", addresses=["noc@example.test"])
    return fleet


def plan(scan: Any, capture: Any, execute: bool = False) -> None:
    with capture(execute=execute):
        plan_scan_alerts(scan)


def yesterday() -> None:
    """Move everything written so far to the previous UTC day."""
    for model in (Notification, DigestEntry):
        for row in model.objects.all():
            model.objects.filter(pk=row.pk).update(created_at=row.created_at - dt.timedelta(days=1))


def test_rows_past_the_cap_are_held_and_never_sent(
    capped: AlertFleet, django_capture_on_commit_callbacks: Any, mail_server: MailServer, admin_client: Any
) -> None:
    plan(capped.scan, django_capture_on_commit_callbacks, execute=True)
    rows = {n.rule_name: n for n in Notification.objects.filter(recipient="soc@example.test")}
    assert {name: n.state for name, n in rows.items()} == {
        "Rule ARC-NET-01": State.SENT,
        "Rule ARC-NP-01": State.SENT,
        "Rule ARC-PL-01": State.HELD,
    }
    held = rows["Rule ARC-PL-01"]
    assert held.attempts == 0 and held.last_error.startswith("Held back by the daily cap (2 messages a day to one recipient)")
    # Shown as such in the outbox, with why.
    page = admin_client.get("/alerts/outbox/").content.decode()
    assert '<span class="badge state-held">Held back by the daily cap</span>' in page and "summarised in the next message" in page
    # Each recipient has a cap of their own.
    assert Notification.objects.get(recipient="noc@example.test").state == State.SENT
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == ["noc@example.test", "soc@example.test", "soc@example.test"]


def test_what_the_cap_held_is_summarised_in_the_next_message(
    capped: AlertFleet, django_capture_on_commit_callbacks: Any, mail_server: MailServer
) -> None:
    plan(capped.scan, django_capture_on_commit_callbacks)
    yesterday()
    [held] = Notification.objects.filter(state=State.HELD)
    since = held.created_at
    second = finished_scan(capped.scope, [SUB, SUB2])
    capped.change(1, "ARC-PL-01", "pass", "unknown", scan=second)
    plan(second, django_capture_on_commit_callbacks, execute=True)

    [carrier] = Notification.objects.filter(scan=second, recipient="soc@example.test")
    assert carrier.state == State.SENT and carrier.rule_name == "Rule ARC-PL-01"
    assert carrier.held_summary == {
        "messages": 1,
        "changes": 1,
        "since": since.isoformat(),
        "rules": [{"rule": "Rule ARC-PL-01", "messages": 1, "changes": 1}],
    }
    held.refresh_from_db()
    assert (held.state, held.summarised_in) == (State.HELD, carrier.pk)
    [received] = [r for r in mail_server.received if r.rcpt_tos == ["soc@example.test"]]
    text = received.text()
    assert (
        f"Held back by the daily cap (2 messages a day): 1 message with 1 change since {since.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC:\n"
        "  - Rule ARC-PL-01: 1 message, 1 change\n"
        f"Your alert history: {SITE}/alerts/outbox/\n"
    ) in text
    assert f'<a href="{SITE}/alerts/outbox/">See them in your alert history</a>' in received.html()
    # Summarised once: the tick has nothing left to say about it.
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 0, "cap_summaries": 0}


def test_the_tick_sends_a_summary_the_next_day_when_no_message_came(
    capped: AlertFleet, django_capture_on_commit_callbacks: Any, mail_server: MailServer
) -> None:
    plan(capped.scan, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert alert_tick()["cap_summaries"] == 0  # the day is not over: a message may still come
    yesterday()
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 0, "cap_summaries": 1}
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 0, "cap_summaries": 0}  # run twice: one summary
    [summary] = Notification.objects.filter(kind="cap_summary")
    assert (summary.rule, summary.recipient, summary.state) == (None, "soc@example.test", State.SENT)
    assert Notification.objects.get(state=State.HELD).summarised_in == summary.pk
    [received] = mail_server.received
    assert received.message["Subject"] == "[Arc Posture] 1 alert message held back by the daily cap"
    assert "  - Rule ARC-PL-01: 1 message, 1 change\n" in received.text()
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_digest_is_not_held_and_carries_the_summary(
    capped: AlertFleet, django_capture_on_commit_callbacks: Any, mail_server: MailServer, settings: Any
) -> None:
    settings.ARC_ALERT_DAILY_CAP = 1
    dora = make_user("dora", "viewer")
    dora.email = "soc@example.test"  # her digest goes to the capped address
    dora.save()
    digest_rule = regression_rule("Digest rule")
    subscribe(user=dora, rule=digest_rule, mode=AlertSubscription.Mode.DIGEST, digest_hour=8)
    plan(capped.scan, django_capture_on_commit_callbacks)
    assert Notification.objects.filter(recipient="soc@example.test", state=State.HELD).count() == 2
    DigestEntry.objects.update(due_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 1, "cap_summaries": 0}
    digest = Notification.objects.get(kind="digest")
    assert digest.state == State.SENT and digest.held_summary["messages"] == 2
    assert set(Notification.objects.filter(state=State.HELD).values_list("summarised_in", flat=True)) == {digest.pk}
    [received] = mail_server.received
    assert "Held back by the daily cap (1 message a day): 2 messages with 2 changes" in received.text()
