"""Playwright driving Debian's chromium against the live server, on data from a real scan of the
Azure emulator fleet (scan_request → collect → evaluate, run in-process on commit)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from posture import governance
from posture.alerts.rules import rule_create, subscribe
from posture.models import AlertRule, Attestation, ChangeEvent, Cluster, Export, Notification, RiskException, Scan, ScanBatch, Scope
from posture.scans.request import scan_request
from tests.conftest import PASSWORD, make_user, unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
FLEET_CLUSTERS = 60


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        unavailable(f"chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe, Django just cannot tell.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Under Playwright's event loop Django keeps separate connections for this thread;
        # close them here, or PostgreSQL refuses to drop the test database afterwards.
        from django.db import connections

        connections.close_all()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def scanned_fleet(transactional_db: Any, make_emulator: Callable[..., Any], emulator_scope: Callable[..., Any]) -> Scan:
    """A scope scanned end to end from the HTTPS emulator (tasks run eagerly on commit)."""
    emulator = make_emulator(clusters=FLEET_CLUSTERS, seed=7)
    scope = emulator_scope(emulator, name="emulated")
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert created and scan.state == Scan.State.SUCCEEDED, (scan.state, scan.error)
    return scan


@pytest.fixture
def browser_admin(transactional_db: Any) -> Any:
    return make_user("ada-admin", "admin")


@dataclass
class Governed:
    """Records every page kind shows data of: a hostile cluster, an attestation and an exception
    on its subscription, and a running scan of a scope whose schedule beat cannot run."""

    hostile: Cluster
    attestation: Attestation
    exception: RiskException
    running: Scan


@pytest.fixture
def governed(scanned_fleet: Scan, browser_admin: Any) -> Governed:
    hostile = Cluster.objects.filter(name__contains="<").order_by("name").first()
    assert hostile is not None  # the emulator fleet names some clusters with markup
    later = timezone.now() + dt.timedelta(days=60)
    attestation = governance.attestation_create(
        user=browser_admin, control="ARC-NET-04", subscription_id=hostile.subscription_id, statement="Reviewed.", expires_at=later
    )
    exception = governance.exception_request(
        user=browser_admin,
        control="ARC-PL-01",
        subscription_id=hostile.subscription_id,
        justification="Compensated by the site firewall.",
        owner="ops",
        expires_at=later,
    )
    live = Scope.objects.create(name="live", tenant_id="contoso.onmicrosoft.com", schedule="*/0 * * * *")
    running = Scan.objects.create(scope=live, state=Scan.State.RUNNING, started_at=timezone.now(), batches_total=4, batches_done=1)
    ScanBatch.objects.create(scan=running, number=2, state=ScanBatch.State.RUNNING, requests=3, rows=1200)
    return Governed(hostile, attestation, exception, running)


def sign_in(page: Any, base_url: str, username: str) -> None:
    page.goto(base_url + "/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")


def shown_exports(user: Any) -> list[Export]:
    """Exports of every state for the Exports and audit pages: a running one with its progress
    bar, a failed one with a long error, a finished one with its download link."""
    now = timezone.now()
    running = Export.objects.create(
        kind="bundle", format="zip", requested_by=user, requested_by_name=user.username, state=Export.State.RUNNING
    )
    Export.objects.filter(pk=running.pk).update(progress_done=1200, progress_total=4800)
    failed = Export.objects.create(
        kind="findings",
        format="xlsx",
        requested_by=user,
        requested_by_name=user.username,
        state=Export.State.FAILED,
        filters={"scope": "emulated", "tag": "x" * 300},
        error="OSError: " + "no space left on device " * 20,
        finished_at=now,
    )
    done = Export.objects.create(
        kind="findings",
        format="csv",
        requested_by=user,
        requested_by_name=user.username,
        state=Export.State.SUCCEEDED,
        filters={"severity": ["high", "medium"], "status": ["fail"]},
        rows=1234,
        size=56789,
        sha256="ab" * 32,
        file_name="exports/shown.csv",
        finished_at=now,
        expires_at=now + dt.timedelta(days=7),
    )
    return [running, failed, done]


def shown_alerts(user: Any, scan: Scan, hostile: Cluster) -> tuple[AlertRule, Notification]:
    """A rule with every limit set and a long name, the hostile cluster regressing in `scan` (so
    the preview shows it), and a failed notification of it to `user` with a long error."""
    from tests.web.conftest import sample_notification

    ChangeEvent.objects.create(cluster=hostile, control="ARC-NP-01", from_status="pass", to_status="fail", scan=scan, at=timezone.now())
    rule = rule_create(
        user=user,
        name="Network policy regressions on production clusters of the platform team",
        kind=AlertRule.Kind.CONTROL_REGRESSION,
        params={"min_severity": "medium"},
        scopes=[scan.scope_id],
        resource_groups=["rg-production-platform-team-westeurope-001"],
        tags=[{"key": "environment-classification-long-key", "value": "production-critical-workloads"}, {"key": "owner", "value": None}],
        controls=["ARC-NP-01", "ARC-PL-01"],
        addresses=["security-operations-distribution-list@example.test"],
    )
    subscribe(user=user, rule=rule, mode="digest", digest_hour=7)
    item = {"event": 1, "cluster": hostile.pk, "name": hostile.name, "control": "ARC-NP-01", "from": "pass", "to": "fail"}
    failed = sample_notification(
        rule, user, scan=scan, changes=[item], last_error="SMTPRecipientsRefused: 550 " + "mailbox unavailable " * 20
    )
    return rule, failed
