"""`make demo` shows an alert: a sample rule, a second scan of a fleet that got worse, and the
alert it sends, in a local mail catcher when EMAIL_HOST is set and in the log when it is not."""

from __future__ import annotations

import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from azure_emulator.fleet import generate_fleet
from azure_emulator.fleet.worsen import worsen
from tests.demo.demo_process import Demo
from tests.posture.mail_server import MailServer

pytestmark = pytest.mark.slow

RULE = "Controls of medium severity or more that regress"
SUBJECT = re.compile(rf"\[Arc Posture\] {RULE}: (\d+) regressions on 3 clusters \(ARC-NET-01(, ARC-PL-01)?\)")


def worsened_names(demo: Demo) -> list[str]:
    """The clusters the demo's "worse" change hits: the same generated fleet, the same change."""
    fleet = generate_fleet(30, 2026)
    return sorted(fleet.cluster(cluster_id)["name"] for cluster_id in worsen(fleet, 3))


@pytest.fixture
def catcher() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


def run_demo(tmp_path: Path, **env: str) -> Demo:
    demo = Demo(tmp_path, DEMO_ALERT_TO="secops@example.test", **env)
    demo.wait_for("Press Ctrl-C to stop.")
    return demo


def stop(demo: Demo) -> None:
    demo.stop(signal.SIGTERM, group=False)
    demo.cleanup()
    assert demo.process.poll() == 0, demo.output()


def assert_lists_the_regressions(text: str, names: list[str], site: str) -> None:
    net01 = text.split("ARC-NET-01 (medium severity)", 1)[1].split("\n\n", 1)[0]
    for name in names:
        assert re.search(rf"  \* {re.escape(name)}: Pass -> Fail\n    {re.escape(site)}/clusters/\d+/(\n|$)", net01), (name, net01)


def test_without_email_host_the_demo_alert_is_written_to_the_log(tmp_path: Path) -> None:
    demo = run_demo(tmp_path, EMAIL_HOST="")
    try:
        output = demo.output()
        names = worsened_names(demo)
        site = f"http://{demo.address}"

        assert f'Sample alert rule "{RULE}" mails secops@example.test.' in output
        assert "The fleet got worse: 3 clusters lost their private path to Azure. Scanning again" in output
        assert "EMAIL_HOST is not set, so it was written to the log below instead of being mailed." in output
        # One alert, from the second scan only: the first scan had nothing to compare with.
        records = re.findall(r"INFO posture\.alerts\.delivery alert \(no EMAIL_HOST set\) to (\S+): (.*)\n", output)
        assert len(records) == 1 and records[0][0] == "secops@example.test" and SUBJECT.fullmatch(records[0][1]), records
        assert f"Alert to secops@example.test: {records[0][1]}\n" in output
        logged = output.split("INFO posture.alerts.delivery", 1)[1]
        assert f"Scan: {site}/scans/" in logged
        assert_lists_the_regressions(logged, names, site)
    finally:
        stop(demo)


def test_with_email_host_the_demo_alert_arrives_in_the_local_catcher(tmp_path: Path, catcher: MailServer) -> None:
    demo = run_demo(tmp_path, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(catcher.port), EMAIL_USE_TLS="false")
    try:
        output = demo.output()
        site = f"http://{demo.address}"

        [mail] = catcher.received
        assert mail.rcpt_tos == ["secops@example.test"]
        subject = mail.message["Subject"]
        assert SUBJECT.fullmatch(subject), subject
        assert f"Alert to secops@example.test: {subject}\n" in output
        assert f"The mail server at 127.0.0.1:{catcher.port} took it (250 2.0.0 Ok: queued)." in output
        assert "no EMAIL_HOST set" not in output
        assert_lists_the_regressions(mail.text(), worsened_names(demo), site)
        assert f'<a href="{site}/controls/ARC-NET-01/">ARC-NET-01</a>' in mail.html()
        # The alert's links lead to the demo's own server (to its sign-in page first).
        link = re.search(rf"{re.escape(site)}/clusters/\d+/", mail.text())
        assert link
        with urllib.request.urlopen(link.group(0), timeout=10) as page:  # noqa: S310 - the demo's loopback server
            assert page.status == 200 and "/login/" in page.url
    finally:
        stop(demo)
