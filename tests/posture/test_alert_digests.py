"""Daily digests: a digest subscriber's items wait for their hour instead of a message; the alert
tick sends each user one digest of everything due, once, even when it runs late or twice; the
digest groups by rule then severity and stays bounded with 10,000 changes, linking to the
filtered clusters list."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from posture.alerts.digest import GROUP_LISTED, LISTED, due_at
from posture.alerts.planning import plan_scan_alerts
from posture.alerts.rules import subscribe
from posture.alerts.tick import alert_tick
from posture.models import AlertSubscription, DigestEntry, Notification
from tests.conftest import make_user
from tests.posture.alerts_fleet import HOSTILE_NAME, alert_fleet, regression_rule
from tests.posture.mail_server import MailServer
from tests.web.conftest import SUB, SUB2, finished_scan

pytestmark = pytest.mark.django_db

SITE = "https://arc.example.test/posture"
DIGEST = AlertSubscription.Mode.DIGEST


def messages_written() -> dict[str, int]:
    """The tick's digests and cap summaries (it plans time-based alerts too: none here)."""
    counts = alert_tick()
    return {"digests": counts["digests"], "cap_summaries": counts["cap_summaries"]}


def digest_user(name: str = "dora") -> Any:
    user = make_user(name, "viewer")
    user.email = f"{name}@example.test"
    user.save()
    return user


def overdue(hours: float = 3) -> None:
    """Every pending entry's hour came `hours` ago (the workers were down meanwhile)."""
    DigestEntry.objects.filter(notification__isnull=True).update(due_at=timezone.now() - dt.timedelta(hours=hours))


def test_due_at_is_the_next_time_the_hour_comes() -> None:
    day = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    assert due_at(day.replace(hour=7, minute=59), 8) == day.replace(hour=8)
    assert due_at(day.replace(hour=8), 8) == day.replace(hour=8) + dt.timedelta(days=1)
    assert due_at(day.replace(hour=23, minute=30), 0) == day + dt.timedelta(days=1)


def test_a_digest_subscriber_gets_an_entry_due_at_their_hour_instead_of_a_message(django_capture_on_commit_callbacks: Any) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    rule = regression_rule(addresses=["soc@example.test", "Dora@Example.test"])
    dora = digest_user()
    subscribe(user=dora, rule=rule, mode=DIGEST, digest_hour=8)
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
        plan_scan_alerts(fleet.scan)  # planned again: nothing new
    # Her own address on the rule's list sends her no immediate copy: she chose the digest.
    assert list(Notification.objects.values_list("recipient", flat=True)) == ["soc@example.test"]
    [entry] = DigestEntry.objects.all()
    assert (entry.user, entry.rule, entry.source, entry.notification) == (dora, rule, f"scan:{fleet.scan.pk}", None)
    assert [(i["name"], i["control"]) for i in entry.listed()] == [("alpha", "ARC-NP-01")]
    assert entry.due_at == due_at(entry.created_at, 8) and entry.due_at.hour == 8


def test_the_tick_sends_each_user_one_digest_when_due_even_late_and_never_twice(
    django_capture_on_commit_callbacks: Any, mail_server: MailServer
) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    fleet.change(1, "ARC-PL-01", "pass", "unknown")
    rules = [regression_rule("Network", controls=["ARC-NP-01"]), regression_rule("Private Link", controls=["ARC-PL-01"])]
    dora = digest_user()
    for rule in rules:
        subscribe(user=dora, rule=rule, mode=DIGEST, digest_hour=8)
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
    assert DigestEntry.objects.count() == 2 and not Notification.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 0, "cap_summaries": 0}  # not due yet
    overdue(hours=3)  # the hour came while the workers were down: the next tick sends it
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 1, "cap_summaries": 0}
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_written() == {"digests": 0, "cap_summaries": 0}  # run twice: nothing more

    [digest] = Notification.objects.all()
    assert (digest.kind, digest.rule, digest.user, digest.recipient, digest.state) == ("digest", None, dora, "dora@example.test", "sent")
    assert digest.source.startswith(f"digest:{dora.pk}:")
    assert set(DigestEntry.objects.values_list("notification", flat=True)) == {digest.pk}
    [received] = mail_server.received
    assert received.rcpt_tos == ["dora@example.test"]
    assert received.message["Subject"] == "[Arc Posture] Daily digest: 2 changes from 2 rules"
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.message["List-Unsubscribe"].strip().startswith(f"<{SITE}/alerts/unsubscribe/")


def test_entries_written_after_a_digest_wait_for_the_next_one(django_capture_on_commit_callbacks: Any) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    rule = regression_rule()
    dora = digest_user()
    subscribe(user=dora, rule=rule, mode=DIGEST, digest_hour=8)
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
        overdue()
        alert_tick()
        # A second scan's change, written after the digest went out, is due the next time 08:00 comes.
        second = finished_scan(fleet.scope, [SUB, SUB2])
        fleet.change(2, "ARC-NP-01", "pass", "fail", scan=second)
        plan_scan_alerts(second)
        assert alert_tick()["digests"] == 0
        assert DigestEntry.objects.filter(notification__isnull=True).count() == 1
        overdue()
        assert alert_tick()["digests"] == 1
    assert Notification.objects.filter(kind="digest").count() == 2


def entry(user: Any, rule: Any, items: list[dict[str, Any]]) -> DigestEntry:
    now = timezone.now()
    return DigestEntry.objects.create(
        user=user,
        rule=rule,
        rule_name=rule.name,
        source=f"test:{rule.pk}",
        items=items,
        created_at=now,
        due_at=now - dt.timedelta(minutes=1),
    )


def change(cluster: int, control: str, name: str = "", to: str = "fail") -> dict[str, Any]:
    return {"event": cluster, "cluster": cluster, "name": name or f"cluster-{cluster:05d}", "control": control, "from": "pass", "to": to}


def test_a_digest_groups_changes_by_rule_then_severity(django_capture_on_commit_callbacks: Any, mail_server: MailServer) -> None:
    dora = digest_user()
    zulu, alpha = regression_rule("Zulu rule"), regression_rule("Alpha rule")
    entry(dora, zulu, [change(1, "ARC-PL-01"), change(2, "ARC-NP-01")])
    entry(dora, alpha, [change(3, "ARC-PL-02", to="unknown"), change(4, "ARC-NP-04", name=HOSTILE_NAME), change(5, "ARC-NP-04")])
    with django_capture_on_commit_callbacks(execute=True):
        alert_tick()
    [received] = mail_server.received
    text = received.text()
    flat = HOSTILE_NAME.replace("\r", " ").replace("\n", " ")
    assert text.startswith(
        "Your daily digest of Arc Posture alerts: 5 changes from 2 rules, by rule and severity.\n"
        f"All clusters: {SITE}/clusters/\n"
        "\n"
        "== Alpha rule: 3 changes\n"
        "\n"
        "High severity: 2 changes on 2 clusters\n"
        f"  ARC-NP-04: 2, failing clusters: {SITE}/clusters/?control=ARC-NP-04\n"
        f"  * cluster-00005: ARC-NP-04 Pass -> Fail\n    {SITE}/clusters/5/\n"
        f"  * {flat}: ARC-NP-04 Pass -> Fail\n    {SITE}/clusters/4/\n"
        "\n"
        "Medium severity: 1 change on 1 cluster\n"
        f"  ARC-PL-02: 1, failing clusters: {SITE}/clusters/?control=ARC-PL-02\n"
        f"  * cluster-00003: ARC-PL-02 Pass -> Unknown\n    {SITE}/clusters/3/\n"
        "\n"
        "== Zulu rule: 2 changes\n"
        "\n"
        "High severity: 1 change on 1 cluster\n"
    )
    assert text.index("== Zulu rule") < text.index("ARC-PL-01: 1")  # Zulu's medium group comes after its high one
    html = received.html()
    assert html.index("Alpha rule: 3 changes") < html.index("High severity: 2") < html.index("Medium severity: 1") < html.index("Zulu rule")
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;" in html and "<b onmouseover" not in html
    assert f'<a href="{SITE}/clusters/?control=ARC-NP-04">ARC-NP-04</a>: 2' in html
    assert b"evil" not in received.raw.split(b"\r\n\r\n", 1)[0]


def test_a_digest_of_10000_changes_stays_bounded_and_links_to_the_filtered_clusters_list(
    django_capture_on_commit_callbacks: Any, mail_server: MailServer
) -> None:
    dora = digest_user()
    controls = ["ARC-NP-01", "ARC-NP-02", "ARC-NP-03", "ARC-NP-04", "ARC-PL-01", "ARC-PL-02", "ARC-PL-03"]
    controls += ["ARC-NET-01", "ARC-NET-02", "ARC-NET-03", "ARC-NET-04", "ARC-KV-01", "ARC-ID-01", "ARC-EV-01", "ARC-DEF-01"]
    items = [change(i, controls[i % len(controls)]) for i in range(10_000)]
    for n in range(5):  # five rules of 2,000 changes, high and medium each
        entry(dora, regression_rule(f"Rule {n}"), items[2000 * n : 2000 * (n + 1)])
    with django_capture_on_commit_callbacks(execute=True):
        alert_tick()
    [digest] = Notification.objects.all()
    assert digest.state == "sent" and len(digest.changes) == 10_000
    [received] = mail_server.received
    text, html = received.text(), received.html()
    assert received.message["Subject"] == "[Arc Posture] Daily digest: 10000 changes from 5 rules"
    assert len(text) < 16_000 and len(html) < 32_000 and len(received.raw) < 80_000
    # A few changes from each rule × severity, and no more than LISTED in all.
    assert f"The first {LISTED} are listed; every change is counted." in text
    assert text.count("  * cluster-") == LISTED and LISTED < 10 * GROUP_LISTED
    first = text[text.index("== Rule 0") : text.index("== Rule 1")]
    assert first.count("  * cluster-") == 2 * GROUP_LISTED
    # Every change counted per rule and severity, each control linking to the clusters it fails on.
    assert all(f"== Rule {n}: 2000 changes" in text for n in range(5))
    high = sum(1 for i in range(2000) if controls[i % len(controls)] in ("ARC-NP-01", "ARC-NP-02", "ARC-NP-04", "ARC-PL-03"))
    assert f"High severity: {high} changes on {high} clusters" in first
    assert f"Medium severity: {2000 - high} changes on {2000 - high} clusters" in first
    assert "and 1 more control" in first  # ten of the eleven medium controls are named
    assert f"ARC-NP-01: 134, failing clusters: {SITE}/clusters/?control=ARC-NP-01" in first
    assert f'<a href="{SITE}/clusters/?control=ARC-NP-01">ARC-NP-01</a>: 134' in html
    last = text[text.index("== Rule 4") :]
    assert "  * cluster-" not in last and f"{SITE}/clusters/?control=ARC-NP-01" in last  # counted and linked, not listed


def test_a_digest_to_a_user_who_lost_their_address_fails_visibly(django_capture_on_commit_callbacks: Any) -> None:
    dora = digest_user()
    entry(dora, regression_rule(), [change(1, "ARC-NP-01")])
    dora.email = ""
    dora.save()
    with django_capture_on_commit_callbacks(execute=True):
        alert_tick()
    [digest] = Notification.objects.all()
    assert (digest.state, digest.last_error) == ("failed", "The user has no email address: the digest is not sent.")
    assert not DigestEntry.objects.filter(notification__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_write_one_digest() -> None:
    dora = digest_user()
    entry(dora, regression_rule(), [change(1, "ARC-NP-01")])
    second: list[dict[str, int]] = []

    def other_tick() -> None:
        try:
            second.append(messages_written())
        finally:
            connection.close()

    with transaction.atomic():
        assert alert_tick()["digests"] == 1  # its locks are held until this block commits
        racer = threading.Thread(target=other_tick)
        racer.start()
        racer.join(timeout=1)
        assert racer.is_alive()  # waiting for the entries' locks
    racer.join(timeout=10)
    assert second == [{"digests": 0, "cap_summaries": 0}]
    assert Notification.objects.filter(kind="digest").count() == 1
    assert not DigestEntry.objects.filter(notification__isnull=True).exists()
