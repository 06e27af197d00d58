"""Layout in a real browser, on a scan of the emulator fleet: no page scrolls sideways on a phone or
a desktop, and the clusters list keeps its rows short."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from posture.alerts.unsubscribe import token as unsubscribe_token
from posture.models import Cluster, Notification, Scan
from tests.browser.conftest import Governed, shown_alerts, shown_exports, sign_in
from tests.web.test_access import url_patterns

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE, DESKTOP = 390, 1440
# URL patterns that answer no page of their own: a file, JSON, or a POST-only action that redirects.
NOT_PAGES = {
    "healthz": "JSON for the load balancer",
    "metrics": "Prometheus text for the scraper",
    "oidc_authentication_init": "a redirect to Entra ID",
    "oidc_authentication_callback": "a redirect back from Entra ID; its refusal page is seen by test_oidc_sign_in.py",
    "logout": "POST only",
    "control-remediation": "a shell script download",
    "scan-progress": "JSON, polled by the scan pages",
    "evidence-download": "a gzip download",
    "evidence-public-key": "a PEM download",
    "export-progress": "JSON, polled by the Exports page",
    "export-download": "a file download",
    "scan-start": "POST only",
    "token-revoke": "POST only",
    "attestation-revoke": "POST only",
    "exception-approve": "POST only",
    "exception-reject": "POST only",
    "exception-revoke": "POST only",
    "user-role": "POST only",
    "user-set-active": "POST only",
    "alert-rule-enabled": "POST only",
    "alert-rule-delete": "POST only",
    "alert-rule-subscription": "POST only",
    "notification-resend": "POST only",
}


@pytest.fixture
def every_page(scanned_fleet: Scan, governed: Governed, browser_admin: Any) -> dict[str, list[str]]:
    """Per URL pattern name, the paths of its pages as an admin sees them, with data on each: a
    hostile cluster name, governance records, a running scan."""
    hostile, attestation, exception, running = governed.hostile, governed.attestation, governed.exception, governed.running
    longest = max(Cluster.objects.all(), key=lambda c: len(c.name))
    scope = scanned_fleet.scope.name
    shown_exports(browser_admin)
    rule, notification = shown_alerts(browser_admin, scanned_fleet, hostile)
    unsubscribing = Notification(rule=rule, kind=rule.kind, recipient="security-operations-distribution-list@example.test")
    return {
        "login": [reverse("login")],
        "password-change": [reverse("password-change")],
        "overview": [reverse("overview"), f"{reverse('overview')}?scope={scope}"],
        "cluster-list": [
            reverse("cluster-list"),
            f"{reverse('cluster-list')}?grade=Z&q=%3Cscript",
            f"{reverse('cluster-list')}?page=2&per_page=25",
        ],
        "cluster-detail": [reverse("cluster-detail", args=[c.pk]) for c in (hostile, longest, Cluster.objects.order_by("name").first())],
        "benchmark-list": [reverse("benchmark-list")],
        "benchmark-detail": [reverse("benchmark-detail", args=[f]) for f in ("cis-k8s", "msft-printed", "nist-800-190")],
        "benchmark-section": [
            reverse("benchmark-section", args=["cis-k8s", "5.3.1"]),
            reverse("benchmark-section", args=["nist-800-190", "4.4.2"]) + "?status=unknown",
        ],
        "control-list": [reverse("control-list")],
        "control-detail": [reverse("control-detail", args=["ARC-PL-01"]), reverse("control-detail", args=["ARC-NP-01"])],
        "scan-list": [reverse("scan-list")],
        "scan-detail": [reverse("scan-detail", args=[scanned_fleet.pk]), reverse("scan-detail", args=[running.pk])],
        "scope-list": [reverse("scope-list")],
        "scope-create": [reverse("scope-create")],
        "scope-edit": [reverse("scope-edit", args=[scope])],
        "attestation-list": [reverse("attestation-list")],
        "attestation-create": [f"{reverse('attestation-create')}?control=ARC-NP-02&cluster={hostile.pk}"],
        "attestation-detail": [reverse("attestation-detail", args=[attestation.pk])],
        "exception-list": [reverse("exception-list")],
        "exception-create": [f"{reverse('exception-create')}?control=ARC-PL-01&cluster={hostile.pk}"],
        "exception-detail": [reverse("exception-detail", args=[exception.pk])],
        "user-list": [reverse("user-list")],
        "user-create": [reverse("user-create")],
        "export-list": [reverse("export-list")],
        "export-audit": [reverse("export-audit")],
        "notification-list": [reverse("notification-list"), f"{reverse('notification-list')}?state=failed&rule={rule.pk}"],
        "notification-detail": [reverse("notification-detail", args=[notification.pk])],
        "alert-rule-list": [reverse("alert-rule-list")],
        "alert-rule-create": [reverse("alert-rule-create")],
        "alert-rule-detail": [reverse("alert-rule-detail", args=[rule.pk])],
        "alert-rule-edit": [reverse("alert-rule-edit", args=[rule.pk])],
        "alert-rule-preview": [reverse("alert-rule-preview", args=[rule.pk])],
        "unsubscribe": [reverse("unsubscribe", args=[unsubscribe_token(unsubscribing)])],
        "token-list": [reverse("token-list")],
        "token-create": [reverse("token-create")],
    }


# The outermost elements past the window's right edge that no scroll box clips (an absolutely
# positioned element escapes the scroll boxes between it and its positioned ancestor).
STICKING_OUT = """() => {
  const limit = window.innerWidth + 1;
  const unclipped = (el) => {
    let absolute = getComputedStyle(el).position === "absolute";
    for (let a = el.parentElement; a; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (absolute && style.position !== "static") absolute = false;
      if (!absolute && style.overflowX !== "visible") return false;
    }
    return true;
  };
  const out = new Set([...document.body.querySelectorAll("*")].filter((el) => el.getBoundingClientRect().right > limit && unclipped(el)));
  return [...out].filter((el) => !out.has(el.parentElement)).slice(0, 5)
    .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join(".")} to ${Math.round(el.getBoundingClientRect().right)} px`);
}"""


def sideways(page: Any) -> list[str]:
    """Why the page scrolls sideways: empty when it fits its window."""
    if page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
        return []
    return page.evaluate(STICKING_OUT) or [f"{page.evaluate('document.documentElement.scrollWidth')} px wide"]


def test_every_page_is_covered_by_the_layout_check(every_page: dict[str, list[str]]) -> None:
    names = {name for name, _ in url_patterns()}
    assert set(every_page) | set(NOT_PAGES) == names, "visit the new page in every_page (or say why it is no page)"
    assert not set(every_page) & set(NOT_PAGES)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_no_page_scrolls_sideways(live_server, browser, every_page, browser_admin, width, screenshot) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    wide: dict[str, list[str]] = {}

    def check(label: str, path: str, status: int = 200) -> None:
        response = page.goto(live_server.url + path)
        assert response.status == status, (label, path, response.status)
        if problems := sideways(page):
            wide[f"{label} {path}"] = problems
            screenshot(page, f"sideways-{width}-{label}")

    check("login", reverse("login"))
    sign_in(page, live_server.url, browser_admin.username)
    for name, paths in every_page.items():
        for path in paths:
            check(name, path)
    check("not found", "/clusters/999999/", status=404)
    # The one-time password page answers the user form's POST.
    page.goto(live_server.url + reverse("user-create"))
    page.get_by_label("User name").fill("nina-new")
    page.get_by_role("button", name="Create user").click()
    page.get_by_test_id("one-time-password").wait_for()
    if problems := sideways(page):
        wide["user created"] = problems
    context.close()
    assert wide == {}, f"pages wider than {width} px: {wide}"


# Rows of the clusters list higher than two lines of their text, and tags cut without their full
# text on hover or wrapped inside their chip.
TALL_ROWS = """() => [...document.querySelectorAll("table.clusters tbody tr")].filter((row) => {
  const cell = getComputedStyle(row.cells[1]);
  const twoLines = 2 * parseFloat(cell.lineHeight) + parseFloat(cell.paddingTop) + parseFloat(cell.paddingBottom) + 2;
  return row.getBoundingClientRect().height > twoLines;
}).map((row) => `${row.cells[0].innerText.split("\\n")[0]}: ${Math.round(row.getBoundingClientRect().height)} px`)"""
BROKEN_TAGS = """() => [...document.querySelectorAll("table.clusters .tag")].filter((tag) =>
  tag.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(tag).lineHeight)
  || (tag.scrollWidth > tag.clientWidth && tag.title !== tag.textContent)
).map((tag) => tag.textContent)"""


def test_cluster_rows_stay_two_lines_high_with_tags_whole_or_cut_with_a_hover_text(live_server, page, scanned_fleet, browser_admin) -> None:
    page.set_viewport_size({"width": DESKTOP, "height": 900})
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(f"{live_server.url}{reverse('cluster-list')}?per_page=100")
    assert page.locator("table.clusters tbody tr").count() == Cluster.objects.count()
    assert page.evaluate(TALL_ROWS) == []
    assert page.evaluate(BROKEN_TAGS) == []
    # Cut names and tags keep their whole text in the title, as text: the hostile ones too.
    titles = page.locator("table.clusters .tag").evaluate_all("tags => tags.map((tag) => tag.title)")
    assert any(title.startswith("<script>alert(1)</script>=") for title in titles)
    names = page.locator("table.clusters td.name-cell a").evaluate_all("links => links.map((a) => [a.title, a.textContent])")
    assert all(title == text for title, text in names) and any('"><img' in title for title, _ in names)
    assert page.locator("table.clusters img, table.clusters script").count() == 0


def test_a_cluster_s_controls_read_on_a_phone_without_scrolling_sideways(live_server, page, scanned_fleet, browser_admin) -> None:
    page.set_viewport_size({"width": PHONE, "height": 844})
    sign_in(page, live_server.url, browser_admin.username)
    page.goto(live_server.url + reverse("cluster-detail", args=[Cluster.objects.order_by("name").first().pk]))
    controls = page.locator("table.controls")
    assert controls.locator("tbody tr").count() > 10
    assert controls.evaluate("table => table.parentElement.scrollWidth <= table.parentElement.clientWidth")  # no scrolling inside either
    reasons = controls.locator("td[data-label=Why]")
    assert reasons.count() > 10
    for box in reasons.evaluate_all("cells => cells.map((cell) => cell.getBoundingClientRect().right)"):
        assert box <= PHONE  # "Why" is read whole, not cut at the window's edge
