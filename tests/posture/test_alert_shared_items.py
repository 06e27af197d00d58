"""A rule's items are stored once per trigger (AlertTrigger) and shared by every recipient's row
and digest entry; a worker renders a trigger's message once and adds each recipient's own parts
(headers, unsubscribe link, what the daily cap held back) to every message."""

from __future__ import annotations

from typing import Any

import pytest

from posture.alerts import messages, unsubscribe
from posture.alerts.delivery import send_notification
from posture.alerts.planning import plan_scan_alerts
from posture.alerts.rules import subscribe
from posture.models import AlertSubscription, AlertTrigger, DigestEntry, Notification
from tests.conftest import make_user
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.mail_server import MailServer

pytestmark = pytest.mark.django_db


def test_recipients_of_a_rule_share_one_stored_copy_of_its_items(django_capture_on_commit_callbacks: Any, mail_server: MailServer) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    fleet.change(1, "ARC-PL-01", "pass", "unknown")
    rule = regression_rule(addresses=["soc@example.test", "noc@example.test"])
    dora = make_user("dora", "viewer")
    dora.email = "dora@example.test"
    dora.save()
    subscribe(user=dora, rule=rule, mode=AlertSubscription.Mode.DIGEST, digest_hour=8)
    with django_capture_on_commit_callbacks(execute=True):
        plan_scan_alerts(fleet.scan)

    [trigger] = AlertTrigger.objects.all()
    assert (trigger.rule, trigger.source, trigger.item_count) == (rule, f"scan:{fleet.scan.pk}", 2)
    assert sorted((i["name"], i["control"]) for i in trigger.items) == [("alpha", "ARC-NP-01"), ("bravo", "ARC-PL-01")]
    rows = list(Notification.objects.filter(rule=rule))
    assert len(rows) == 2
    # The rows refer to the trigger and hold no copy of their own; so does the digest entry.
    assert all((n.trigger_id, n.changes, n.item_count, n.state) == (trigger.pk, [], 2, "sent") for n in rows)
    [entry] = DigestEntry.objects.all()
    assert (entry.trigger_id, entry.items, len(entry.listed())) == (trigger.pk, [], 2)
    # Both messages list both items.
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == ["noc@example.test", "soc@example.test"]
    for received in mail_server.received:
        text = received.text()
        assert "alpha" in text and "bravo" in text and "ARC-NP-01" in text and "ARC-PL-01" in text
        assert received.message["Subject"] == "[Arc Posture] Regressions: 2 regressions on 2 clusters (ARC-NP-01, ARC-PL-01)"
    # Planned again: the trigger is reused, nothing new is written.
    with django_capture_on_commit_callbacks(execute=False):
        assert plan_scan_alerts(fleet.scan) == []
    assert AlertTrigger.objects.count() == 1 and Notification.objects.count() == 2


def test_a_message_rendered_for_one_recipient_never_carries_anothers_footer(
    django_capture_on_commit_callbacks: Any, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=["soc@example.test", "noc@example.test"])
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
    soc = Notification.objects.get(recipient="soc@example.test")
    noc = Notification.objects.get(recipient="noc@example.test")
    # soc@ had a message held back by the daily cap; noc@ had none.
    summary = {
        "messages": 3,
        "changes": 7,
        "since": "2026-12-05T10:00:00+00:00",
        "rules": [{"rule": "Held rule", "messages": 3, "changes": 7}],
    }
    Notification.objects.filter(pk=soc.pk).update(held_summary=summary)
    rendered = []
    context = messages.message_context
    monkeypatch.setattr(messages, "message_context", lambda n: rendered.append(n.recipient) or context(n))

    assert send_notification(str(soc.pk)) == "sent"
    assert send_notification(str(noc.pk)) == "sent"

    assert rendered == ["soc@example.test"], "the trigger's message is rendered once for both recipients"
    by_recipient = {r.rcpt_tos[0]: r for r in mail_server.received}
    first, second = by_recipient["soc@example.test"], by_recipient["noc@example.test"]
    # Each message's unsubscribe link (headers, text, HTML) unsubscribes its own recipient.
    soc_url, noc_url = (str(r.message["List-Unsubscribe"]).strip().strip("<>") for r in (first, second))
    assert unsubscribe.read(soc_url.rstrip("/").rsplit("/", 1)[1]).address == "soc@example.test"
    assert unsubscribe.read(noc_url.rstrip("/").rsplit("/", 1)[1]).address == "noc@example.test"
    assert soc_url in first.text() and soc_url in first.html()
    assert noc_url in second.text() and noc_url in second.html()
    assert soc_url not in second.raw.decode() and noc_url not in first.raw.decode()
    # Only soc@ is told what the cap held back.
    assert "Held rule: 3 messages, 7 changes" in first.text() and "Held rule" in first.html()
    assert "Held back" not in second.text() and "Held" not in second.html()
    # Same items and wording otherwise, each with its own Message-ID.
    assert first.message["Subject"] == second.message["Subject"]
    assert (first.message["Message-ID"], second.message["Message-ID"]) == (soc.message_id, noc.message_id)
    assert "alpha" in second.text() and first.text().split("\nHeld back")[0] == second.text().split("Unsubscribe: ")[0]
