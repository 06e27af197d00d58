"""Two emulator scans where the fleet gets worse: the exact messages a real SMTP server receives
(recipients, subject, bodies, links, headers), none for a standing failure or a cluster name that
tries to inject a header, and none for a third scan that changed nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from posture.alerts.rules import subscribe
from posture.alerts.unsubscribe import url as unsubscribe_url
from posture.models import ChangeEvent, Cluster, ControlResult, Notification, Scan, Status
from tests.conftest import make_user
from tests.posture.alerts_fleet import HOSTILE_NAME, regression_rule
from tests.posture.exports_fleet import run_scan

pytestmark = pytest.mark.django_db(transaction=True)

CONTROL = "ARC-PL-01"
SITE = "https://arc.example.test/posture"


def pl01(status: str) -> list[Cluster]:
    """Clusters whose ARC-PL-01 has `status`, that reach Azure directly (no Arc gateway: turning
    Private Link off then fails the control instead of making it not applicable), by name."""
    rows = ControlResult.objects.filter(control=CONTROL, status=status).select_related("cluster").order_by("cluster__name")
    return [r.cluster for r in rows if not r.cluster.facts.get("gateway_enabled")]


def worsen(emulator: Any, to_fail: Cluster, to_unknown: Cluster, standing: Cluster) -> None:
    """to_fail turns Private Link off (and takes a hostile name); to_unknown and standing (whose
    ARC-PL-01 already fails) go silent for three days."""
    silent = {"properties": {"connectivityStatus": "Offline", "lastConnectivityTime": (timezone.now() - dt.timedelta(days=3)).isoformat()}}
    emulator.fleet.update_cluster(to_fail.arm_id, {"name": HOSTILE_NAME, "properties": {"privateLinkState": "Disabled"}})
    emulator.fleet.update_cluster(to_unknown.arm_id, silent)
    emulator.fleet.update_cluster(standing.arm_id, silent)


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def test_a_scan_of_a_fleet_that_got_worse_mails_exactly_its_regressions(make_emulator, emulator_scope, mail_server) -> None:
    emulator = make_emulator(clusters=40, seed=7)
    scope = emulator_scope(emulator)
    vera = make_user("vera", "viewer")
    vera.email = "vera@example.test"
    vera.save()
    rule = regression_rule(
        "Private Link regressions", params={"min_severity": "medium"}, controls=[CONTROL], addresses=["soc@example.test"]
    )
    subscribe(user=vera, rule=rule)
    regression_rule("High only", params={"min_severity": "high"}, controls=[CONTROL], addresses=["high@example.test"])

    run_scan(scope)  # every cluster is new: no change, no mail
    assert mail_server.received == [] and not Notification.objects.exists()
    passing, failing = pl01(Status.PASS), pl01(Status.FAIL)
    to_fail, to_unknown, standing = passing[0], passing[1], failing[0]
    worsen(emulator, to_fail, to_unknown, standing)
    second = run_scan(scope)

    assert ControlResult.objects.get(cluster=to_fail, control=CONTROL).status == Status.FAIL
    assert ControlResult.objects.get(cluster=to_unknown, control=CONTROL).status == Status.UNKNOWN
    assert ControlResult.objects.get(cluster=standing, control=CONTROL).status == Status.FAIL
    # The standing failure's cluster did change (its passes turned unknown), just not ARC-PL-01.
    standing_changes = ChangeEvent.objects.filter(scan=second, cluster=standing)
    assert standing_changes.exists() and not standing_changes.filter(control=CONTROL).exists()
    received = sorted(mail_server.received, key=lambda r: r.rcpt_tos)
    assert [r.rcpt_tos for r in received] == [["soc@example.test"], ["vera@example.test"]]
    rows = {n.recipient: n for n in Notification.objects.all()}
    assert sorted(rows) == ["soc@example.test", "vera@example.test"]
    assert all(n.state == Notification.State.SENT and n.attempts == 1 and n.scan_id == second.pk for n in rows.values())

    to_fail.refresh_from_db()
    listed = sorted([(to_fail.name, to_fail.pk, "Fail"), (to_unknown.name, to_unknown.pk, "Unknown")], key=lambda c: (c[0].lower(), c[1]))
    shown = {to_fail.pk: HOSTILE_NAME.replace("\r", " ").replace("\n", " "), to_unknown.pk: to_unknown.name}
    for message in received:
        mail = message.message
        row = rows[message.rcpt_tos[0]]
        assert mail["Message-ID"] == row.message_id
        assert mail["Subject"] == "[Arc Posture] Private Link regressions: 2 regressions on 2 clusters (ARC-PL-01)"
        assert (mail["From"], mail["To"]) == ("arc-posture@example.test", message.rcpt_tos[0])
        # Azure strings reach no header: the hostile name added none and appears in none.
        assert sorted(mail.keys()) == sorted(
            ["Content-Type", "MIME-Version", "Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "X-Auto-Response-Suppress"]
            + ["List-Unsubscribe", "List-Unsubscribe-Post"]
        )
        # Folded before the value (a long URL has no other place to fold): readers unfold it.
        assert mail["List-Unsubscribe"].strip() == f"<{unsubscribe_url(row)}>" and unsubscribe_url(row).startswith(
            f"{SITE}/alerts/unsubscribe/"
        )
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert b"evil" not in header_block(message.raw) and b"attacker" not in header_block(message.raw)
        lines = "".join(f"  * {shown[pk]}: Pass -> {to}\n    {SITE}/clusters/{pk}/\n" for _, pk, to in listed)
        assert message.text() == (
            'The alert rule "Private Link regressions" found 2 regressions on 2 clusters: controls that started failing or turned unknown.\n'
            f"Scan: {SITE}/scans/{second.pk}/\n"
            "\n"
            "ARC-PL-01 (medium severity): Private Link is enabled with a Private Link Scope\n"
            f"{SITE}/controls/ARC-PL-01/\n"
            "References:\n"
            "  - Recommendation 3: Use Azure Private Link (preview) to access Azure resources\n"
            "  - NIST SP 800-190 Application Container Security Guide September 2017 § 4.4.2 Unbounded network access from containers\n"
            "Clusters:\n" + lines + "\n"
            "--\n"
            f"Arc Posture, {SITE}\n"
            'You receive this because you subscribe to the rule "Private Link regressions", or the rule names this address.\n'
            f"Unsubscribe: {unsubscribe_url(row)}\n"
        )
        html = message.html()
        assert "&lt;b onmouseover=&quot;x()&quot;&gt;bold&lt;/b&gt;" in html and "<b onmouseover" not in html
        for _, pk, to in listed:
            assert f'<tr><td><a href="{SITE}/clusters/{pk}/">' in html and f"<td>Pass</td><td>{to}</td>" in html
        assert f'<a href="{SITE}/controls/ARC-PL-01/">ARC-PL-01</a> (medium severity)' in html
        assert "found 2 regressions on 2 clusters" in html and "Detail" not in html  # regressions carry no detail
        assert f'<a href="{SITE}/scans/{second.pk}/">See the scan</a>' in html
        assert f'<a href="{unsubscribe_url(row)}">Unsubscribe</a>' in html

    run_scan(scope)  # nothing changed: nothing more planned or sent
    assert Notification.objects.count() == 2 and len(mail_server.received) == 2
    assert Scan.objects.count() == 3
