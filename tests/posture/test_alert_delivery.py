"""Delivery to a real SMTP server (aiosmtpd on loopback): a notification is sent once, retried with
backoff while the server is down, failed at once on a 5xx refusal, never sent twice by a
redelivered task, and a lost worker is told apart by where it stopped: before DATA (sent again)
or during it (unconfirmed, never sent again). `send_test_alert` says what the server answered."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from posture.alerts.delivery import send_notification, send_notifications
from posture.alerts.outbox import requeue_orphaned, stale_after
from posture.alerts.planning import plan_scan_alerts
from posture.models import Notification
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.mail_server import MailServer

pytestmark = pytest.mark.django_db

State = Notification.State


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[Notification]:
    """One regression, planned for two addresses; nothing sent or queued yet."""
    monkeypatch.setattr("posture.alerts.planning._enqueue", lambda ids: None)
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=["soc@example.test", "noc@example.test"])
    plan_scan_alerts(fleet.scan)
    return list(Notification.objects.order_by("recipient"))


def later() -> dt.datetime:
    """A watchdog tick long after everything in flight went stale."""
    return timezone.now() + stale_after() + dt.timedelta(seconds=1)


def test_a_notification_is_sent_once_with_its_message_id_and_recorded(planned: list[Notification], mail_server: MailServer) -> None:
    noc, soc = planned
    assert send_notification(str(soc.pk)) == State.SENT
    assert send_notification(str(soc.pk)) == ""  # a redelivered task claims nothing
    [received] = mail_server.received
    assert received.rcpt_tos == ["soc@example.test"] and received.mail_from == "arc-posture@example.test"
    assert received.message["Message-ID"] == soc.message_id
    soc.refresh_from_db()
    assert (soc.state, soc.attempts, soc.smtp_reply, soc.last_error) == (State.SENT, 1, "250 2.0.0 Ok: queued", "")
    assert soc.sent_at is not None and soc.claimed_at is not None
    assert Notification.objects.get(pk=noc.pk).state == State.PENDING


def test_smtp_down_then_up_delivers_exactly_once_after_backoff(planned: list[Notification], mail_server: MailServer, settings: Any) -> None:
    settings.ARC_ALERT_RETRY_BASE_SECONDS = 0.2
    noc, soc = planned
    noc.delete()
    mail_server.stop()
    for attempt in (1, 2):
        assert send_notification(str(soc.pk)) == State.PENDING
        soc.refresh_from_db()
        assert soc.attempts == attempt and soc.last_error.startswith("Could not reach the mail server: ConnectionRefusedError")
        assert soc.next_attempt_at > timezone.now()  # backing off: not due
        assert send_notification(str(soc.pk)) == ""
        waited = (soc.next_attempt_at - timezone.now()).total_seconds()
        assert 0.75 * 0.2 * 2 ** (attempt - 1) - 0.1 < waited <= 0.2 * 2 ** (attempt - 1)  # doubled each time, jittered
        time.sleep(max(waited, 0))
    mail_server.start()
    # The retry's countdown message is lost (tasks ran in process here): the watchdog queues it.
    assert requeue_orphaned(later())["notifications_requeued"] == 1
    soc.refresh_from_db()
    assert (soc.state, soc.attempts, soc.last_error) == (State.SENT, 3, "")
    assert [r.message["Message-ID"] for r in mail_server.received] == [soc.message_id]
    assert requeue_orphaned(later()) == {"notifications_requeued": 0, "notifications_unconfirmed": 0}
    assert send_notification(str(soc.pk)) == "" and len(mail_server.received) == 1


def test_retries_end_in_failed_once_the_retry_window_is_over(planned: list[Notification], mail_server: MailServer, settings: Any) -> None:
    soc = planned[1]
    mail_server.stop()
    Notification.objects.filter(pk=soc.pk).update(created_at=timezone.now() - dt.timedelta(hours=settings.ARC_ALERT_RETRY_HOURS))
    assert send_notification(str(soc.pk)) == State.FAILED
    soc.refresh_from_db()
    assert soc.last_error.startswith("Gave up after 1 attempts: Could not reach the mail server: ConnectionRefusedError")
    assert requeue_orphaned(later())["notifications_requeued"] == 1  # the other row, not this one


def test_a_recipient_refused_with_5xx_fails_at_once_and_is_never_retried(planned: list[Notification], mail_server: MailServer) -> None:
    noc = planned[0]
    mail_server.refuse("noc@example.test")
    assert send_notification(str(noc.pk)) == State.FAILED
    noc.refresh_from_db()
    assert noc.attempts == 1
    assert noc.last_error == (
        "The mail server refused the recipient noc@example.test: 550 5.1.1 <noc@example.test>: Recipient address rejected: User unknown"
    )
    Notification.objects.exclude(pk=noc.pk).delete()
    assert requeue_orphaned(later()) == {"notifications_requeued": 0, "notifications_unconfirmed": 0}
    assert send_notification(str(noc.pk)) == "" and mail_server.received == []


def test_a_recipient_refused_with_4xx_is_retried(planned: list[Notification], mail_server: MailServer) -> None:
    noc = planned[0]
    mail_server.refuse("noc@example.test", "451 4.3.0 Try again later")
    assert send_notification(str(noc.pk)) == State.PENDING
    noc.refresh_from_db()
    assert noc.last_error == "The mail server refused the recipient noc@example.test: 451 4.3.0 Try again later"


def test_a_worker_lost_before_data_is_sent_again_and_one_lost_during_data_never(
    planned: list[Notification], mail_server: MailServer
) -> None:
    noc, soc = planned
    long_ago = timezone.now() - stale_after() - dt.timedelta(seconds=5)
    # As a SIGKILLed worker leaves them: noc claimed, SMTP not at DATA yet; soc handed over.
    Notification.objects.filter(pk=noc.pk).update(state=State.SENDING, claimed_at=long_ago, attempts=1)
    Notification.objects.filter(pk=soc.pk).update(state=State.HANDING_OVER, claimed_at=long_ago, attempts=1)
    assert requeue_orphaned() == {"notifications_requeued": 1, "notifications_unconfirmed": 1}
    noc.refresh_from_db()
    soc.refresh_from_db()
    assert (noc.state, noc.attempts) == (State.SENT, 2)
    assert soc.state == State.UNCONFIRMED and "it may have been delivered" in soc.last_error
    assert [r.rcpt_tos for r in mail_server.received] == [["noc@example.test"]]
    assert requeue_orphaned(later()) == {"notifications_requeued": 0, "notifications_unconfirmed": 0}
    assert send_notification(str(soc.pk)) == "" and len(mail_server.received) == 1


@pytest.mark.django_db(transaction=True)
def test_an_attempt_that_lost_its_claim_stops_before_data(planned: list[Notification], mail_server: MailServer) -> None:
    soc = planned[1]

    def watchdog_takes_the_row(*_args: Any) -> None:
        # While this attempt talks to the server, the row is handed to another attempt (from a
        # thread of its own: the server's thread runs an event loop, where Django refuses queries).
        def hand_on() -> None:
            Notification.objects.filter(pk=soc.pk).update(state=State.PENDING, claimed_at=None)
            connection.close()

        thread = threading.Thread(target=hand_on)
        thread.start()
        thread.join()

    mail_server.catcher.on_rcpt = watchdog_takes_the_row
    assert send_notification(str(soc.pk)) == State.PENDING
    assert mail_server.received == []
    mail_server.catcher.on_rcpt = None
    assert send_notification(str(soc.pk)) == State.SENT and len(mail_server.received) == 1


def test_without_an_smtp_host_the_message_goes_to_the_log(planned: list[Notification], settings: Any, caplog: Any) -> None:
    settings.EMAIL_HOST = ""
    soc = planned[1]
    with caplog.at_level("INFO", logger="posture.alerts.delivery"):
        assert send_notification(str(soc.pk)) == State.SENT
    soc.refresh_from_db()
    assert soc.smtp_reply == "no EMAIL_HOST set: written to the log"
    assert "alert (no EMAIL_HOST set) to soc@example.test: [Arc Posture] Regressions: 1 regression on 1 cluster (ARC-NP-01)" in caplog.text


def test_send_test_alert_prints_the_servers_answer_or_why_the_message_was_not_taken(mail_server: MailServer, settings: Any) -> None:
    out = io.StringIO()
    call_command("send_test_alert", "--to", "ops@example.test", stdout=out)
    assert out.getvalue() == "The mail server took the message: 250 2.0.0 Ok: queued\n"
    [received] = mail_server.received
    assert received.rcpt_tos == ["ops@example.test"] and received.message["Subject"] == "[Arc Posture] Test message"
    mail_server.refuse("nobody@example.test")
    with pytest.raises(CommandError, match=r"^The mail server refused the recipient nobody@example.test: 550 5\.1\.1 "):
        call_command("send_test_alert", "--to", "nobody@example.test")
    with pytest.raises(CommandError, match=r"^'not an address' is not a valid email address\.$"):
        call_command("send_test_alert", "--to", "not an address")
    mail_server.stop()
    with pytest.raises(CommandError, match=r"^Could not reach the mail server: ConnectionRefusedError"):
        call_command("send_test_alert", "--to", "ops@example.test")
    settings.EMAIL_HOST = ""
    with pytest.raises(CommandError, match=r"^EMAIL_HOST is not set: alerts are written to the log, not sent\.$"):
        call_command("send_test_alert", "--to", "ops@example.test")


def test_a_batch_sends_each_of_its_notifications_once(planned: list[Notification], mail_server: MailServer) -> None:
    ids = [str(n.pk) for n in planned]
    assert send_notifications(ids) == [State.SENT, State.SENT]
    assert send_notifications(ids) == ["", ""]  # a redelivered batch claims nothing
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == ["noc@example.test", "soc@example.test"]


def test_a_message_that_cannot_be_built_fails_at_once_with_the_reason(
    planned: list[Notification], mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(notification: Notification) -> None:
        raise KeyError("control")

    monkeypatch.setattr("posture.alerts.delivery.build_message", broken)
    noc, soc = planned
    soc.delete()
    assert send_notification(str(noc.pk)) == State.FAILED
    noc.refresh_from_db()
    assert noc.last_error == "The message could not be built: KeyError: 'control'" and noc.attempts == 1
    assert mail_server.received == [] and requeue_orphaned(later())["notifications_requeued"] == 0


def test_the_watchdog_queues_a_backlog_ten_rows_per_task_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posture.alerts.planning._enqueue", lambda ids: None)
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=[f"team{n:02d}@example.test" for n in range(25)])
    plan_scan_alerts(fleet.scan)
    queued: list[list[str]] = []
    monkeypatch.setattr("posture.alerts.outbox.enqueue", lambda name, notification_ids: queued.append(notification_ids))
    assert requeue_orphaned(later())["notifications_requeued"] == 25
    assert [len(ids) for ids in queued] == [10, 10, 5]
    assert sorted(i for ids in queued for i in ids) == sorted(str(pk) for pk in Notification.objects.values_list("pk", flat=True))
