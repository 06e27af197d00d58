"""Exports in a real browser, on a scan of the emulator fleet: start a large export from a page's
Export menu, follow its progress on the Exports page, download the file.

Tasks run in-process when the request commits, so an export started from the UI is finished by
the time the Exports page shows; the live bar is then followed on an export whose progress the
test moves itself, as the worker would.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from posture.exports.filters import ExportFilters
from posture.exports.run import export_to_file
from posture.models import Export, Scan
from tests.browser.conftest import sign_in
from tests.browser.test_layout import PHONE, sideways

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_large_export_started_from_the_clusters_page_is_followed_and_downloaded(
    live_server, page, scanned_fleet: Scan, browser_admin: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, screenshot
) -> None:
    monkeypatch.setattr("posture.exports.jobs.SMALL_EXPORT_ROWS", 0)  # every export is large: built by the task
    base = live_server.url
    sign_in(page, base, browser_admin.username)
    page.goto(f"{base}{reverse('cluster-list')}?scope={scanned_fleet.scope.name}&sort=-score")
    page.locator(".export-menu > summary").click()
    page.get_by_role("button", name="Findings · CSV").click()

    page.wait_for_url(base + reverse("export-list"))
    expect(page.locator(".messages")).to_contain_text("built in the background")
    export = Export.objects.get()
    assert (export.kind, export.format, export.requested_by, export.filters) == ("findings", "csv", browser_admin, {"scope": "emulated"})
    row = page.locator("table.exports tbody tr").first
    expect(row).to_contain_text("Succeeded")
    screenshot(page, "export-finished")

    with page.expect_download() as info:
        row.get_by_role("link", name="Download").click()
    download = info.value
    assert download.suggested_filename == f"arc-posture-findings-{export.created_at:%Y-%m-%d}.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    got = saved.read_bytes()
    export.refresh_from_db()
    assert hashlib.sha256(got).hexdigest() == export.sha256 and len(got) == export.size
    expected = io.BytesIO()
    export_to_file("findings", "csv", ExportFilters.parse({"scope": "emulated"}), expected)
    assert got == expected.getvalue()


def test_the_exports_page_follows_a_running_export_until_its_download_link(
    live_server, page, scanned_fleet: Scan, browser_admin: Any
) -> None:
    finished = Export.objects.create(kind="bundle", format="zip", requested_by=browser_admin, state=Export.State.RUNNING)
    Export.objects.filter(pk=finished.pk).update(progress_done=100, progress_total=400)
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(live_server.url + reverse("export-list"))
    box = page.locator("[data-progress-url]")
    expect(box.locator("[data-field=percent]")).to_have_text("25")
    assert box.locator("progress").evaluate("el => el.value") == 0.25

    Export.objects.filter(pk=finished.pk).update(progress_done=300)
    expect(box.locator("[data-field=progress_done]")).to_have_text("300")
    assert box.locator("progress").evaluate("el => el.value") == 0.75
    expect(page.locator("[data-announce]")).to_have_text("Export running, 75% done (300 of 400 rows)")

    Export.objects.filter(pk=finished.pk).update(
        state=Export.State.SUCCEEDED, progress_done=400, rows=400, sha256="0" * 64, file_name="exports/x.zip", finished_at=timezone.now()
    )
    # Finished: the page reloads once and offers the file.
    expect(page.get_by_role("link", name="Download")).to_be_visible(timeout=15_000)
    expect(page.locator("[data-progress-url]")).to_have_count(0)


@pytest.mark.parametrize(
    "path",
    [
        reverse("cluster-list") + "?grade=A",
        reverse("benchmark-detail", args=["cis-k8s"]),
        reverse("benchmark-section", args=["nist-800-190", "4.4.2"]),
        reverse("control-detail", args=["ARC-PL-01"]),
    ],
)
def test_the_open_export_menu_fits_a_phone(live_server, browser, scanned_fleet: Scan, browser_admin: Any, path: str, screenshot) -> None:
    context = browser.new_context(viewport={"width": PHONE, "height": 844})
    page = context.new_page()
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(live_server.url + path)
    page.locator(".export-menu > summary").click()
    expect(page.get_by_role("button", name="Evidence bundle · zip")).to_be_visible()
    problems = sideways(page)
    if problems:
        screenshot(page, "export-menu-phone")
    context.close()
    assert problems == []
