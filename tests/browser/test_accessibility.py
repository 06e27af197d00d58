"""axe-core (from npm) on every page, as an admin, on a scanned emulator fleet: no serious or
critical violation anywhere, including forms showing their errors; live progress is announced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from posture.models import Cluster, Scan, Scope
from tests.browser.conftest import shown_exports, sign_in
from tests.conftest import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@pytest.fixture
def axe_page(browser: Any) -> Iterator[Any]:
    """A page with axe-core loaded into every document.

    The pages' CSP (script-src 'self') blocks the inline <script> that add_script_tag writes, and
    bypass_csp would switch the policy off for the pages under test. An init script is injected
    by the browser itself, outside the page's CSP, so the pages are checked as users get them.
    """
    if not AXE.exists():
        unavailable(f"{AXE} (npm ci installs axe-core)")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def measured_below(node: dict[str, Any]) -> bool:
    """A colour-contrast node axe measured below the ratio it expects."""
    for check in node["any"]:
        data = check.get("data") or {}
        if isinstance(data, dict) and data.get("contrastRatio") and data.get("expectedContrastRatio"):
            return float(data["contrastRatio"]) < float(str(data["expectedContrastRatio"]).split(":")[0])
    return False


def axe_violations(page: Any) -> list[str]:
    """Serious and critical violations, and the serious and critical results axe left for review
    that are real here: it does not judge a one-letter grade badge's contrast (it might be an
    icon) nor an aria-describedby to a missing id (a script might add it), though it measures both.
    Contrast it could not measure (text over an image, symbols) stays out."""
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations', 'incomplete']})")
    found = [(v, v["nodes"]) for v in result["violations"] if v["impact"] in BLOCKING]
    for v in result["incomplete"]:
        if v["impact"] in BLOCKING:
            nodes = [n for n in v["nodes"] if v["id"] != "color-contrast" or measured_below(n)]
            found += [(v, nodes)] if nodes else []
    return [f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(str(n['target']) for n in nodes[:5])}" for v, nodes in found]


def check(page: Any, name: str, found: dict[str, list[str]]) -> None:
    assert page.evaluate("typeof axe") == "object", name  # axe is loaded, so a clean result means something
    if violations := axe_violations(page):
        found[name] = violations


def test_every_page_has_no_serious_or_critical_axe_violation(live_server, axe_page, scanned_fleet, browser_admin, governed) -> None:
    page, base, found = axe_page, live_server.url, {}
    hostile, attestation, exception, running = governed.hostile, governed.attestation, governed.exception, governed.running
    # This fleet has no grade B; one badge is enough for axe to check its contrast. (After the
    # governance changes above: they re-evaluate the fleet.)
    graded_b = Cluster.objects.exclude(pk=hostile.pk).order_by("name").first()
    assert Cluster.objects.filter(pk=graded_b.pk).update(grade="B") == 1

    page.goto(base + "/login/")
    check(page, "login", found)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("[aria-invalid=true]")
    check(page, "login with errors", found)
    sign_in(page, base, browser_admin.username)

    pages = {
        "overview": "/",
        "overview of one scope": f"/?scope={scanned_fleet.scope.name}",
        "clusters": "/clusters/",
        "clusters with invalid filters": "/clusters/?grade=Z&connectivity=nope",
        "clusters graded B": "/clusters/?grade=B",
        "cluster detail (hostile name)": f"/clusters/{hostile.pk}/",
        "cluster detail (grade B)": f"/clusters/{graded_b.pk}/",
        "controls": "/controls/",
        "control detail": "/controls/ARC-PL-01/",
        "control detail (passing)": "/controls/ARC-EV-01/?status=pass",
        "benchmarks": "/benchmarks/",
        "benchmark detail": "/benchmarks/cis-k8s/",
        "benchmark detail (as printed)": "/benchmarks/msft-printed/",
        "benchmark section": "/benchmarks/cis-k8s/5.3.1/",
        "scans": "/scans/",
        "scan detail": f"/scans/{scanned_fleet.pk}/",
        "scan detail (running)": f"/scans/{running.pk}/",
        "scopes": "/scopes/",
        "scope form": f"/scopes/{scanned_fleet.scope.name}/edit/",
        "scope form (bad schedule)": "/scopes/live/edit/",
        "new scope": "/scopes/new/",
        "users": "/users/",
        "new user": "/users/new/",
        "attestations": "/attestations/",
        "attestation detail": f"/attestations/{attestation.pk}/",
        "new attestation": "/attestations/new/?control=ARC-NP-02",
        "exceptions": "/exceptions/",
        "exception detail": f"/exceptions/{exception.pk}/",
        "new exception": f"/exceptions/new/?control=ARC-PL-01&cluster={hostile.pk}",
        "password change": "/account/password/",
        "exports": "/exports/",
        "export audit": "/exports/audit/",
    }
    shown_exports(browser_admin)
    for name, path in pages.items():
        response = page.goto(base + path)
        assert response.status == 200, (name, response.status)
        check(page, name, found)
    page.goto(base + "/benchmarks/cis-k8s/")
    page.locator(".export-menu > summary").click()
    check(page, "benchmark detail with the export menu open", found)

    forms = {
        "new exception": (f"/exceptions/new/?control=ARC-PL-01&cluster={hostile.pk}", "Request exception"),
        "new attestation": ("/attestations/new/?control=ARC-NP-02", "Record attestation"),
        "new scope": ("/scopes/new/", "Save"),
        "new user": ("/users/new/", "Create user"),
        "password change": ("/account/password/", "Change password"),
    }
    for name, (path, button) in forms.items():
        page.goto(base + path)
        page.get_by_role("button", name=button).click()  # empty: the form comes back with its errors
        page.wait_for_selector(".errorlist, .error")
        check(page, f"{name} with errors", found)
    assert found == {}, "\n".join(f"{name}:\n  " + "\n  ".join(v) for name, v in found.items())


def test_live_scan_progress_is_announced_to_screen_readers(live_server, page, browser_admin) -> None:
    scope = Scope.objects.create(name="live", tenant_id="contoso.onmicrosoft.com")
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, started_at=timezone.now(), batches_total=4, batches_done=1)
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(f"{live_server.url}/scans/{scan.pk}/")
    status = page.get_by_role("status").filter(has_text="Scan running")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("Scan running, 25% done (1 of 4 batches)")
    Scan.objects.filter(pk=scan.pk).update(batches_done=3)
    expect(status).to_have_text("Scan running, 75% done (3 of 4 batches)")
