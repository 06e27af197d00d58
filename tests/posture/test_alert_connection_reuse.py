"""A worker keeps one SMTP connection for its messages, and reusing it weakens nothing: every
message on it is handed over before its DATA, a connection the server dropped is replaced before
DATA (the message goes out once, at once), an idle or reconfigured one is not reused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from posture.alerts import smtp
from posture.alerts.delivery import send_notification
from posture.alerts.planning import plan_scan_alerts
from posture.models import Notification
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.mail_server import MailServer

pytestmark = pytest.mark.django_db(transaction=True)

State = Notification.State
ADDRESSES = ["soc@example.test", "noc@example.test", "cert@example.test"]


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One regression planned for three addresses; nothing queued. Their ids, by ADDRESSES."""
    monkeypatch.setattr("posture.alerts.planning._enqueue", lambda ids: None)
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=ADDRESSES)
    plan_scan_alerts(fleet.scan)
    rows = dict(Notification.objects.values_list("recipient", "pk"))
    yield [str(rows[address]) for address in ADDRESSES]
    smtp.close_reused()


class Sessions:
    """The client address of each message's connection, and the row's state when DATA came."""

    def __init__(self, server: MailServer) -> None:
        self.peers: list[Any] = []
        self.states_at_data: list[str] = []
        self.catcher = server.catcher
        self.delivered = self.catcher.handle_DATA
        self.catcher.handle_DATA = self.handle_DATA  # looked up per connection: set before any

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        self.states_at_data.append(state_of(envelope.rcpt_tos[0]))
        return await self.delivered(server, session, envelope)


def state_of(recipient: str) -> str:
    # From a thread of its own: the server's thread runs an event loop, where Django refuses queries.
    found: list[str] = []

    def read() -> None:
        found.append(Notification.objects.get(recipient=recipient).state)
        connection.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    return found[0]


def test_messages_share_one_connection_and_each_is_handed_over_before_its_data(planned: list[str], mail_server: MailServer) -> None:
    sessions = Sessions(mail_server)
    assert [send_notification(pk) for pk in planned] == [State.SENT] * 3
    assert [r.rcpt_tos for r in mail_server.received] == [[a] for a in ADDRESSES]
    assert len(set(sessions.peers)) == 1
    assert sessions.states_at_data == [State.HANDING_OVER] * 3
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_a_connection_the_server_dropped_is_replaced_before_data_and_the_message_goes_out_once(
    planned: list[str], mail_server: MailServer
) -> None:
    sessions = Sessions(mail_server)
    assert send_notification(planned[0]) == State.SENT
    mail_server.stop()  # the server goes away and comes back: the kept connection is dead
    mail_server.start()
    assert send_notification(planned[1]) == State.SENT
    assert [r.rcpt_tos for r in mail_server.received] == [[ADDRESSES[0]], [ADDRESSES[1]]]
    assert len(set(sessions.peers)) == 2
    row = Notification.objects.get(pk=planned[1])
    assert (row.attempts, row.last_error) == (1, "")


def test_a_connection_idle_too_long_is_not_reused(planned: list[str], mail_server: MailServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions(mail_server)
    monkeypatch.setattr(smtp, "IDLE_SECONDS", 0.0)
    assert send_notification(planned[0]) == State.SENT and send_notification(planned[1]) == State.SENT
    assert len(set(sessions.peers)) == 2


def test_changed_smtp_settings_take_effect_on_the_next_message(planned: list[str], mail_server: MailServer, settings: Any) -> None:
    assert send_notification(planned[0]) == State.SENT
    other = MailServer()
    other.start()
    try:
        settings.EMAIL_PORT = other.port
        assert send_notification(planned[1]) == State.SENT
    finally:
        other.stop()
    assert [r.rcpt_tos for r in mail_server.received] == [[ADDRESSES[0]]]
    assert [r.rcpt_tos for r in other.received] == [[ADDRESSES[1]]]


def test_a_refused_recipient_does_not_spoil_the_next_message(planned: list[str], mail_server: MailServer) -> None:
    mail_server.refuse(ADDRESSES[0])
    assert send_notification(planned[0]) == State.FAILED
    assert send_notification(planned[1]) == State.SENT
    assert [r.rcpt_tos for r in mail_server.received] == [[ADDRESSES[1]]]
