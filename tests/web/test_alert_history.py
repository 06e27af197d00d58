"""The alert history: admins see every notification, everyone else only their own (sent to them
as a subscriber or to their address); its detail lists the items; an admin resends a failed or
unconfirmed notification as a new row that is sent once, the old row untouched."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posture.models import Notification
from tests.conftest import logged_in, make_user
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.mail_server import MailServer, mail_server  # noqa: F401 (aiosmtpd on loopback)
from tests.web.conftest import sample_notification

pytestmark = pytest.mark.django_db

State = Notification.State


@pytest.fixture
def people() -> dict[str, Any]:
    users = {name: make_user(name, role) for name, role in (("vera", "viewer"), ("anna", "analyst"), ("adam", "admin"))}
    for user in users.values():
        user.email = f"{user.username}@example.test"
        user.save()
    return users


def shown(client: Client, **query: str) -> set[str]:
    return {str(n.pk) for n in client.get(reverse("notification-list"), query).context["page"]}


def test_each_user_sees_only_their_own_notifications_and_admins_all(people: dict[str, Any]) -> None:
    rule = regression_rule()
    vera, anna = people["vera"], people["anna"]
    to_vera = sample_notification(rule, vera, recipient="vera@example.test")
    # Her address as a distribution address of the rule: no user on the row, the case differs.
    to_vera_address = sample_notification(rule, None, recipient="VERA@example.test", source="scan:other")
    to_anna = sample_notification(rule, anna, recipient="anna@example.test", source="scan:third")
    to_list = sample_notification(rule, None, recipient="soc@example.test", source="scan:fourth")

    vera_client, anna_client = logged_in(vera), logged_in(anna)
    assert shown(vera_client) == {str(to_vera.pk), str(to_vera_address.pk)}
    assert shown(anna_client) == {str(to_anna.pk)}
    assert shown(logged_in(people["adam"])) == {str(n.pk) for n in (to_vera, to_vera_address, to_anna, to_list)}
    for other in (to_anna, to_list):
        assert vera_client.get(reverse("notification-detail", args=[other.pk])).status_code == 404
    page = vera_client.get(reverse("notification-list")).content.decode()
    assert "anna@example.test" not in page and "soc@example.test" not in page


def test_a_user_without_an_address_sees_only_rows_naming_them(people: dict[str, Any]) -> None:
    rule = regression_rule()
    nobody = make_user("nobody", "viewer")  # no email: "" must not match rows with an empty recipient
    sample_notification(rule, None, recipient="")
    mine = sample_notification(rule, nobody, recipient="", source="scan:mine")
    assert shown(logged_in(nobody)) == {str(mine.pk)}


def test_the_history_filters_by_state_and_rule_and_shows_why(admin_client: Client, people: dict[str, Any]) -> None:
    first, second = regression_rule("First"), regression_rule("Second")
    failed = sample_notification(first, people["vera"], last_error="550 <refused>")
    sent = sample_notification(second, people["vera"], state=State.SENT, smtp_reply="250 2.0.0 Ok: queued as <X>", last_error="")
    assert shown(admin_client, state="failed") == {str(failed.pk)}
    assert shown(admin_client, rule=str(second.pk)) == {str(sent.pk)}
    assert shown(admin_client, state="bogus", rule="x") == {str(failed.pk), str(sent.pk)}  # ignored, not an error
    page = admin_client.get(reverse("notification-list")).content.decode()
    assert "550 &lt;refused&gt;" in page and "250 2.0.0 Ok: queued as &lt;X&gt;" in page


def test_the_detail_lists_the_items_escaped_with_the_delivery_state(people: dict[str, Any]) -> None:
    rule = regression_rule()
    changes = [
        {"event": 1, "cluster": None, "name": "<b>evil</b>\nBcc: x", "control": "ARC-NP-01", "from": "pass", "to": "fail"},
        {
            "kind": "control_regression",
            "severity": "low",
            "cluster": None,
            "name": "ok",
            "control": "ARC-PL-01",
            "from": "pass",
            "to": "unknown",
        },
    ]
    notification = sample_notification(rule, people["vera"], changes=changes, smtp_reply="", last_error="550 no such user")
    page = logged_in(people["vera"]).get(reverse("notification-detail", args=[notification.pk])).content.decode()
    assert "&lt;b&gt;evil&lt;/b&gt;\nBcc: x" in page and "<b>evil" not in page
    assert "550 no such user" in page and notification.message_id.replace("<", "&lt;").replace(">", "&gt;") in page
    assert '<td data-label="Severity">high</td>' in page and '<td data-label="Severity">low</td>' in page  # old items: the control's
    assert reverse("notification-resend", args=[notification.pk]) not in page  # a viewer cannot resend


def test_resend_is_a_new_row_sent_once_and_the_old_row_stays_as_it_was(
    admin_client: Client,
    people: dict[str, Any],
    mail_server: MailServer,  # noqa: F811 (the fixture imported above)
    django_capture_on_commit_callbacks: Any,
) -> None:
    fleet = alert_fleet()
    changes = [{"event": 1, "cluster": fleet.clusters[0].pk, "name": "alpha", "control": "ARC-NP-01", "from": "pass", "to": "fail"}]
    old = sample_notification(regression_rule(), people["vera"], recipient="vera@example.test", changes=changes, scan=fleet.scan)
    before = Notification.objects.values().get(pk=old.pk)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("notification-resend", args=[old.pk]))
    new = Notification.objects.exclude(pk=old.pk).get()
    assert response["Location"] == reverse("notification-detail", args=[new.pk])
    assert Notification.objects.values().get(pk=old.pk) == before
    assert (new.source, new.state, new.attempts, new.recipient, new.changes) == (
        f"resend:{old.pk}:1",
        State.SENT,
        1,
        old.recipient,
        old.changes,
    )
    assert new.message_id != old.message_id and new.user == old.user and new.rule == old.rule
    [received] = mail_server.received
    assert received.rcpt_tos == ["vera@example.test"] and received.message["Message-ID"] == new.message_id
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("notification-resend", args=[new.pk]))  # sent: nothing to resend
    assert Notification.objects.count() == 2 and len(mail_server.received) == 1


def test_an_unconfirmed_notification_is_resent_only_once_the_admin_confirms(
    admin_client: Client, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[str] = []
    monkeypatch.setattr("posture.alerts.history._enqueue", queued.append)  # sending is the test above
    old = sample_notification(regression_rule(), people["vera"], state=State.UNCONFIRMED, last_error="")
    page = admin_client.get(reverse("notification-detail", args=[old.pk])).content.decode()
    assert "This message may have been delivered" in page and 'name="confirm"' in page
    response = admin_client.post(reverse("notification-resend", args=[old.pk]), follow=True)
    assert "tick the box to confirm" in response.content.decode() and Notification.objects.count() == 1
    admin_client.post(reverse("notification-resend", args=[old.pk]), {"confirm": "yes"})
    admin_client.post(reverse("notification-resend", args=[old.pk]), {"confirm": "yes"})
    sources = sorted(Notification.objects.exclude(pk=old.pk).values_list("source", flat=True))
    assert sources == [f"resend:{old.pk}:1", f"resend:{old.pk}:2"]
    assert Notification.objects.get(pk=old.pk).state == State.UNCONFIRMED


def test_a_pending_notification_is_not_resent(admin_client: Client, people: dict[str, Any]) -> None:
    old = sample_notification(regression_rule(), people["vera"], state=State.PENDING, last_error="")
    response = admin_client.post(reverse("notification-resend", args=[old.pk]), follow=True)
    assert "Only a failed or unconfirmed notification can be resent; this one is pending." in response.content.decode()
    assert Notification.objects.count() == 1


def test_a_digest_lists_each_item_with_its_rule_and_is_resent_as_a_digest(
    admin_client: Client, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("posture.alerts.history._enqueue", lambda notification_id: None)
    changes = [
        {
            "kind": "score_drop",
            "severity": "medium",
            "cluster": None,
            "name": "alpha",
            "control": "",
            "from": 80,
            "to": 55,
            "rule": "Scores <b>",
        },
        {
            "kind": "control_regression",
            "severity": "high",
            "cluster": None,
            "name": "bravo",
            "control": "ARC-NP-01",
            "from": "pass",
            "to": "fail",
            "rule": "Net",
        },
    ]
    digest = sample_notification(None, people["vera"], changes=changes, source="digest:vera:2026-12-06")
    page = admin_client.get(reverse("notification-detail", args=[digest.pk])).content.decode()
    assert "<dd>Daily digest</dd>" in page and '<td data-label="Rule">Scores &lt;b&gt;</td>' in page
    assert "80 → 55" in page and '<td data-label="Rule">Net</td>' in page
    admin_client.post(reverse("notification-resend", args=[digest.pk]))
    resent = Notification.objects.exclude(pk=digest.pk).get()
    assert (resent.kind, resent.rule, resent.rule_name, resent.changes) == ("digest", None, "Daily digest", changes)
