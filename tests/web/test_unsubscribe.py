"""One-click unsubscribe (RFC 8058): every message carries the link and the two headers, free of
Azure strings; GET only confirms; a POST saying List-Unsubscribe=One-Click, with no cookie or
CSRF token, unsubscribes: a user's subscription is removed, a distribution address is opted out
for good; a digest's link ends the user's digests; a tampered token is refused with a 400."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from posture.alerts.planning import plan_scan_alerts
from posture.alerts.routing import recipients
from posture.alerts.rules import subscribe
from posture.alerts.unsubscribe import SALT, token
from posture.models import AlertOptOut, AlertSubscription, DigestEntry, Notification
from tests.conftest import make_user
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.mail_server import MailServer, mail_server  # noqa: F401 (the SMTP server fixture)

pytestmark = pytest.mark.django_db

SITE = "https://arc.example.test/posture"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def mailed(django_capture_on_commit_callbacks: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A regression on the cluster with the hostile name, mailed to a subscribed user and a
    distribution address; the received messages by recipient."""
    server: MailServer = request.getfixturevalue("mail_server")
    fleet = alert_fleet()
    fleet.change(3, "ARC-NP-01", "pass", "fail")
    rule = regression_rule(addresses=["soc@example.test"])
    vera = make_user("vera", "viewer")
    vera.email = "vera@example.test"
    vera.save()
    subscribe(user=vera, rule=rule)
    with django_capture_on_commit_callbacks(execute=True):
        plan_scan_alerts(fleet.scan)
    return {"fleet": fleet, "rule": rule, "vera": vera, "mail": {r.rcpt_tos[0]: r for r in server.received}}


def path_of(header: str) -> str:
    """The site path of a List-Unsubscribe header's URL (the test client has no /posture prefix)."""
    match = re.fullmatch(rf"<{re.escape(SITE)}(/alerts/unsubscribe/[A-Za-z0-9_\-:]+/)>", header.strip())
    assert match, header
    return match.group(1)


def one_click(path: str) -> Any:
    """The POST a mail client sends (RFC 8058 §3.2): no cookie, no CSRF token."""
    return Client(enforce_csrf_checks=True).post(path, ONE_CLICK)


def test_every_message_carries_the_rfc_8058_headers_and_no_azure_string(mailed: dict[str, Any]) -> None:
    for address, received in mailed["mail"].items():
        mail = received.message
        row = Notification.objects.get(recipient=address)
        assert path_of(mail["List-Unsubscribe"]) == f"/alerts/unsubscribe/{token(row)}/"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        headers = received.raw.split(b"\r\n\r\n", 1)[0]
        assert b"evil" not in headers and b"attacker" not in headers and b"X-Injected" not in headers
        assert f"Unsubscribe: {SITE}/alerts/unsubscribe/{token(row)}/" in received.text()


def test_get_shows_a_confirmation_and_changes_nothing(mailed: dict[str, Any]) -> None:
    path = path_of(mailed["mail"]["vera@example.test"].message["List-Unsubscribe"])
    response = Client().get(path)  # no sign-in: the token is the authority
    page = response.content.decode()
    assert response.status_code == 200
    assert "Arc Posture will stop sending the alerts of the rule “Regressions” to vera@example.test." in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert AlertSubscription.objects.filter(user=mailed["vera"], rule=mailed["rule"]).exists()
    assert Client().head(path).status_code == 200 and AlertSubscription.objects.exists()


def test_a_one_click_post_removes_the_users_subscription(mailed: dict[str, Any]) -> None:
    path = path_of(mailed["mail"]["vera@example.test"].message["List-Unsubscribe"])
    response = one_click(path)
    assert response.status_code == 200 and "Done: Arc Posture will stop sending the alerts" in response.content.decode()
    assert not AlertSubscription.objects.exists()
    assert one_click(path).status_code == 200  # twice: nothing more to do, no error
    assert [a for a, _ in recipients(mailed["rule"])] == ["soc@example.test"]


def test_a_one_click_post_opts_a_distribution_address_out_even_when_the_rule_is_edited(mailed: dict[str, Any]) -> None:
    rule = mailed["rule"]
    assert one_click(path_of(mailed["mail"]["soc@example.test"].message["List-Unsubscribe"])).status_code == 200
    assert list(AlertOptOut.objects.values_list("rule", "address")) == [(rule.pk, "soc@example.test")]
    rule.addresses = ["SOC@example.test", "noc@example.test"]  # the address removed and added back, in another case
    rule.save()
    assert [a for a, _ in recipients(rule)] == ["vera@example.test", "noc@example.test"]


def test_a_post_without_the_one_click_body_or_with_a_tampered_token_is_refused(mailed: dict[str, Any]) -> None:
    path = path_of(mailed["mail"]["vera@example.test"].message["List-Unsubscribe"])
    response = Client().post(path, {})
    assert response.status_code == 400 and "List-Unsubscribe=One-Click" in response.content.decode()
    value = path.split("/")[-2]
    tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    forged = signing.dumps({"u": mailed["vera"].pk, "s": "all"}, salt="another salt")
    unsigned = signing.dumps({"u": mailed["vera"].pk, "s": "all"}, salt=SALT)[:-10]
    for bad in (tampered, forged, unsigned, "nonsense"):
        for answer in (Client().get(f"/alerts/unsubscribe/{bad}/"), one_click(f"/alerts/unsubscribe/{bad}/")):
            assert answer.status_code == 400
            assert "This unsubscribe link is not valid: The signature does not match." in answer.content.decode()
    assert AlertSubscription.objects.count() == 1 and not AlertOptOut.objects.exists()


def test_a_digests_link_ends_the_users_digests_only(django_capture_on_commit_callbacks: Any) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    dora = make_user("dora", "viewer")
    dora.email = "dora@example.test"
    dora.save()
    digest_rule, immediate_rule = regression_rule("Daily"), regression_rule("At once")
    subscribe(user=dora, rule=digest_rule, mode=AlertSubscription.Mode.DIGEST, digest_hour=8)
    subscribe(user=dora, rule=immediate_rule)
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
    assert DigestEntry.objects.filter(user=dora, notification__isnull=True).count() == 1
    digest = Notification(kind="digest", user=dora, recipient=dora.email)
    page = Client().get(f"/alerts/unsubscribe/{token(digest)}/").content.decode()
    assert "Arc Posture will stop sending every daily digest of alerts to dora@example.test." in page
    assert one_click(f"/alerts/unsubscribe/{token(digest)}/").status_code == 200
    assert list(AlertSubscription.objects.values_list("rule__name", "mode")) == [("At once", "immediate")]
    assert not DigestEntry.objects.exists()  # what was waiting for her digest is not sent either


def test_a_cap_summarys_link_ends_every_rule_for_that_recipient() -> None:
    naming = [
        regression_rule("One", addresses=["soc@example.test"]),
        regression_rule("Two", addresses=["SOC@example.test", "noc@example.test"]),
    ]
    other = regression_rule("Three", addresses=["noc@example.test"])
    summary = Notification(kind="cap_summary", recipient="soc@example.test")
    page = Client().get(f"/alerts/unsubscribe/{token(summary)}/").content.decode()
    assert "Arc Posture will stop sending every alert to soc@example.test." in page
    assert one_click(f"/alerts/unsubscribe/{token(summary)}/").status_code == 200
    assert sorted(AlertOptOut.objects.values_list("rule__name", flat=True)) == ["One", "Two"]
    assert [[a for a, _ in recipients(rule)] for rule in (*naming, other)] == [[], ["noc@example.test"], ["noc@example.test"]]


def test_a_recipients_link_for_a_rule_is_the_same_in_every_message(mailed: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    row = Notification.objects.get(recipient="vera@example.test")
    first = token(row)
    monkeypatch.setattr(signing.time, "time", lambda: 4_000_000_000.0)  # a resend years later
    assert token(row) == first
    assert path_of(mailed["mail"]["vera@example.test"].message["List-Unsubscribe"]) == f"/alerts/unsubscribe/{first}/"


def test_a_timestamped_link_mailed_by_an_earlier_release_still_unsubscribes(mailed: dict[str, Any]) -> None:
    earlier = signing.dumps({"u": mailed["vera"].pk, "s": "rule", "r": mailed["rule"].pk}, salt=SALT, compress=True)
    assert one_click(f"/alerts/unsubscribe/{earlier}/").status_code == 200
    assert not AlertSubscription.objects.exists()
