"""The dashboard in a real browser, on a scan of the emulator fleet."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from posture import governance
from posture.models import Cluster, ControlResult, Scan, ScanBatch, Scope, Status
from tests.browser.conftest import FLEET_CLUSTERS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def watch_console(page: Any) -> list[str]:
    """Collect CSP violations and script errors the page reports."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    return problems


def cell_texts(page: Any, column: int) -> list[str]:
    return [t.strip() for t in page.locator(f"table.clusters tbody tr td:nth-child({column})").all_inner_texts()]


def test_sign_in_and_read_the_overview_of_a_scanned_fleet(live_server, page, scanned_fleet, browser_admin, screenshot) -> None:
    problems = watch_console(page)
    page.goto(live_server.url + "/")
    assert "/login/" in page.url  # every page is behind the login
    screenshot(page, "login")
    sign_in(page, live_server.url, browser_admin.username)

    assert page.get_by_role("heading", name="Fleet overview").is_visible()
    assert re.search(r"\d+\.\d", page.locator(".kpi-card").first.inner_text())  # the fleet score
    assert page.locator(".kpi-card").nth(2).inner_text().count(str(FLEET_CLUSTERS)) == 1
    assert page.locator("figure.chart svg polyline.score-line").count() == 1
    grade_rows = page.locator("#grades-heading + .bars .bar-row")
    assert grade_rows.count() == 7 and "F" in grade_rows.all_inner_texts()[5]
    assert page.get_by_role("heading", name="Top failing controls").is_visible()
    assert page.get_by_text("Succeeded").first.is_visible()  # the last scan's state
    screenshot(page, "overview")

    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "overview-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways scrolling on a phone
    page.set_viewport_size({"width": 1366, "height": 900})
    assert problems == []


def test_filter_the_clusters_and_open_one(live_server, page, scanned_fleet, browser_admin, screenshot) -> None:
    problems = watch_console(page)
    sign_in(page, live_server.url, browser_admin.username)
    page.get_by_role("link", name="Clusters", exact=True).click()
    page.wait_for_url(re.compile(r"/clusters/$"))
    all_names = cell_texts(page, 1)
    assert len(all_names) == min(FLEET_CLUSTERS, 50)
    screenshot(page, "clusters")

    offline = Cluster.objects.filter(connectivity_status="Offline").count()
    assert 0 < offline < FLEET_CLUSTERS
    page.get_by_label("Connectivity").select_option("Offline")
    page.get_by_label("Sort").select_option("-score")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"connectivity=Offline"))
    query = parse_qs(urlparse(page.url).query)
    assert query["connectivity"] == ["Offline"] and query["sort"] == ["-score"]
    assert set(cell_texts(page, 6)) == {"Offline"}
    assert len(cell_texts(page, 1)) == offline
    screenshot(page, "clusters-filtered")

    page.reload()  # the view is in the URL: reloading (or sharing it) shows the same rows
    assert len(cell_texts(page, 1)) == offline

    page.locator("table.clusters tbody tr td:nth-child(1) a").first.click()
    page.wait_for_url(re.compile(r"/clusters/\d+/$"))
    evidence = page.locator("table.controls td.evidence dl.kv")
    assert evidence.count() > 5
    assert page.locator("table.controls").get_by_text("connectivity_status").first.is_visible()
    assert page.get_by_text("Offline").first.is_visible()
    screenshot(page, "cluster-detail")
    assert problems == []


def test_an_approved_exception_excepts_the_control_and_changes_the_score(
    live_server, page, scanned_fleet, browser_admin, screenshot
) -> None:
    problems = watch_console(page)
    # A scored cluster with a failing control: excepting it leaves the denominator, so the score moves.
    result = (
        ControlResult.objects.filter(status=Status.FAIL, cluster__score__gt=0, cluster__score__lt=100)
        .select_related("cluster")
        .order_by("cluster__name", "control")
        .first()
    )
    assert result is not None
    cluster, control = result.cluster, result.control
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    score_before = page.get_by_test_id("cluster-score").inner_text()
    row = page.locator(f"tr[data-control='{control}']")
    assert row.get_by_test_id("status").inner_text() == "Fail"

    row.get_by_role("link", name="Request exception").click()
    page.wait_for_url(re.compile(r"/exceptions/new/"))
    assert page.get_by_label("Control").input_value() == control
    assert page.get_by_label("Cluster resource ID").input_value() == cluster.arm_id
    page.get_by_role("button", name="Request exception").click()  # empty: the form explains what is missing
    assert page.locator(".errorlist").count() >= 2
    screenshot(page, "exception-form-errors")
    page.get_by_label("Justification").fill("Compensated by the site firewall; remediation planned for Q3.")
    page.get_by_label("Owner").fill("platform-team")
    page.get_by_role("button", name="Request exception").click()
    page.wait_for_url(re.compile(r"/exceptions/\d+/$"))
    assert page.get_by_test_id("exception-state").inner_text() == "Requested"
    screenshot(page, "exception-requested")

    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"/exceptions/\d+/$"))
    assert page.get_by_test_id("exception-state").inner_text() == "Approved"
    screenshot(page, "exception-approved")

    page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
    assert page.locator(f"tr[data-control='{control}']").get_by_test_id("status").inner_text() == "Excepted"
    score_after = page.get_by_test_id("cluster-score").inner_text()
    assert score_after != score_before
    assert float(score_after.split()[0]) > float(score_before.split()[0])
    screenshot(page, "cluster-detail-excepted")
    assert problems == []


def test_every_page_renders_without_script_or_policy_errors(live_server, page, scanned_fleet, browser_admin, screenshot) -> None:
    problems = watch_console(page)
    sign_in(page, live_server.url, browser_admin.username)
    hostile = Cluster.objects.filter(name__contains="<").order_by("name").first()
    assert hostile is not None  # the emulator fleet names some clusters with markup
    attestation = governance.attestation_create(
        user=browser_admin,
        control="ARC-NET-04",
        subscription_id=hostile.subscription_id,
        statement="Firewall rules reviewed against the Arc network requirements on 2026-11-01.",
        expires_at=timezone.now() + dt.timedelta(days=60),
    )
    pages = {
        "benchmarks": "/benchmarks/",
        "benchmark-cis": "/benchmarks/cis-k8s/",
        "benchmark-printed": "/benchmarks/msft-printed/",
        "benchmark-section": "/benchmarks/cis-k8s/5.3.1/",
        "benchmark-section-unknown": "/benchmarks/nist-800-190/4.4.2/?status=unknown",
        "controls": "/controls/",
        "control-detail": "/controls/ARC-PL-01/",
        "scans": "/scans/",
        "scan-detail": f"/scans/{scanned_fleet.pk}/",
        "scopes": "/scopes/",
        "scope-form": "/scopes/emulated/edit/",
        "scope-new": "/scopes/new/",
        "attestations": "/attestations/",
        "attestation-form": "/attestations/new/?control=ARC-NP-02",
        "attestation-detail": f"/attestations/{attestation.pk}/",
        "exceptions": "/exceptions/",
        "users": "/users/",
        "user-form": "/users/new/",
        "password": "/account/password/",
        "cluster-hostile": f"/clusters/{hostile.pk}/",
        "clusters-hostile-search": "/clusters/?q=%3Cscript",
    }
    for name, path in pages.items():
        response = page.goto(live_server.url + path)
        assert response.status == 200, (name, response.status)
        assert page.locator("h1").count() == 1, name
        # Long names from Azure wrap: the page never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, name
        screenshot(page, name)
    # Markup in cluster names stayed text: no injected element, no dialog.
    page.goto(f"{live_server.url}/clusters/{hostile.pk}/")
    assert page.locator("h1").inner_text() == hostile.name
    assert page.locator("img[src='x']").count() == 0
    assert problems == []
    response = page.goto(live_server.url + "/clusters/999999/")
    assert response.status == 404 and page.get_by_role("heading", name="Not found").is_visible()
    screenshot(page, "not-found")


def test_scan_progress_updates_live_and_the_page_shows_the_result(live_server, page, browser_admin, screenshot) -> None:
    problems = watch_console(page)
    scope = Scope.objects.create(name="live", tenant_id="contoso.onmicrosoft.com")
    scan = Scan.objects.create(
        scope=scope, state=Scan.State.RUNNING, started_at=timezone.now(), batches_total=4, batches_done=1, requests=5
    )
    ScanBatch.objects.create(scan=scan, number=2, state=ScanBatch.State.RUNNING, requests=3, rows=1200)
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(f"{live_server.url}/scans/{scan.pk}/")
    box = page.locator("[data-progress-url]")
    expect(box.locator("[data-field=requests]")).to_have_text("8")  # 5 finished + 3 live
    assert box.locator("progress").evaluate("el => el.value") == 0.25
    screenshot(page, "scan-running")

    Scan.objects.filter(pk=scan.pk).update(batches_done=3, requests=9)
    expect(box.locator("[data-field=batches_finished]")).to_have_text("3")
    assert box.locator("progress").evaluate("el => el.value") == 0.75

    Scan.objects.filter(pk=scan.pk).update(state=Scan.State.SUCCEEDED, batches_done=4, finished_at=timezone.now())
    ScanBatch.objects.filter(scan=scan).update(state=ScanBatch.State.DONE)
    # Finished: polling stops and the page reloads once to show the final figures.
    expect(page.locator("[data-progress-url]:not([data-active])")).to_have_count(1, timeout=15_000)
    expect(page.locator("[data-field=state_label]")).to_have_text("Succeeded")
    expect(page.get_by_role("button", name="Scan again")).to_be_visible()  # rendered by the server: the page reloaded
    screenshot(page, "scan-finished")
    assert problems == []
