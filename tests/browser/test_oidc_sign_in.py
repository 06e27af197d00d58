"""Sign-in with Entra ID in Debian's chromium, through the emulator's sign-in page: the mapped
role, a role removed in Entra, the refused cases and LOCAL_LOGIN=false."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_user
from tests.web import oidc_flow
from tests.web.oidc_flow import user

entra_emulator, entra = oidc_flow.entra_emulator, oidc_flow.entra  # fixtures
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def signing_in(live_server: Any, entra: Any, browser: Any) -> Iterator[Any]:
    """A factory of fresh browser contexts (no cookies) that trust the emulator's own CA, as a
    browser on a network with a private authority would."""
    entra.register_redirect_uri(f"{live_server.url}/oidc/callback/")
    contexts: list[Any] = []

    def new_page() -> Any:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, ignore_https_errors=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield new_page
    for context in contexts:
        context.close()


def through_entra(page: Any, base_url: str, name: str) -> None:
    """From the app's sign-in page to Entra's and back, as `name` (a directory user)."""
    page.goto(base_url + "/login/")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
    page.get_by_role("button", name=name).click()


def test_sign_in_with_microsoft_lands_on_the_overview_with_the_mapped_role(
    live_server: Any, signing_in: Any, entra: Any, screenshot: Any
) -> None:
    page = signing_in()
    through_entra(page, live_server.url, "Ann Analyst")
    page.wait_for_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="Fleet overview")).to_be_visible()
    expect(page.locator(".account").get_by_text("ann@contoso.example · analyst")).to_be_visible()
    screenshot(page, "oidc-signed-in")

    # Ann's app role becomes Admin in Entra: the next sign-in gives the admin pages.
    entra.set_user(user(entra, "ann")["oid"], roles=["Posture.Admin"])
    again = signing_in()
    through_entra(again, live_server.url, "Ann Analyst")
    again.wait_for_url(live_server.url + "/")
    expect(again.get_by_role("link", name="Users")).to_be_visible()


def test_a_role_removed_in_entra_refuses_the_next_sign_in(live_server: Any, signing_in: Any, entra: Any, screenshot: Any) -> None:
    page = signing_in()
    through_entra(page, live_server.url, "Vic Viewer")
    page.wait_for_url(live_server.url + "/")
    entra.set_user(user(entra, "vic")["oid"], roles=[])
    later = signing_in()
    through_entra(later, live_server.url, "Vic Viewer")
    expect(later.get_by_role("heading", name="Sign-in refused")).to_be_visible()
    expect(later.get_by_role("alert")).to_contain_text("no Arc Posture role")
    screenshot(later, "oidc-refused-no-role")
    page.goto(live_server.url + "/")  # the session opened before the removal lost the role too
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_forged_state_replayed_callback_replayed_code_and_another_tenant_are_refused(live_server: Any, signing_in: Any, entra: Any) -> None:
    page = signing_in()
    through_entra(page, live_server.url, "Ada Admin")
    page.wait_for_url(live_server.url + "/")
    callback = next(r for r in entra.requests("signin") if r["status"] == 302)["response_headers"]["Location"]
    code = parse_qs(urlsplit(callback).query)["code"][0]

    forged = signing_in()
    forged.goto(f"{live_server.url}/oidc/callback/?code={code}&state=forged")
    expect(forged.get_by_role("alert")).to_contain_text("did not start here")

    page.goto(callback)  # the same callback again, in the browser that used it
    expect(page.get_by_role("alert")).to_contain_text("did not start here")

    # The used code pasted into a sign-in another browser started: Entra refuses to redeem it again.
    thief = signing_in()
    thief.goto(live_server.url + "/login/")
    thief.get_by_role("link", name="Sign in with Microsoft").click()
    expect(thief.get_by_role("heading", name="Pick an account")).to_be_visible()
    state = parse_qs(urlsplit(thief.url).query)["state"][0]
    thief.goto(f"{live_server.url}/oidc/callback/?code={code}&state={state}")
    expect(thief.get_by_role("alert")).to_contain_text("already used")

    entra.faults.id_token("other_tenant")
    foreign = signing_in()
    through_entra(foreign, live_server.url, "Ada Admin")
    expect(foreign.get_by_role("alert")).to_contain_text("another Entra ID tenant")


def test_with_local_login_off_only_microsoft_and_the_break_glass_form_remain(live_server: Any, signing_in: Any, settings: Any) -> None:
    settings.LOCAL_LOGIN = False
    settings.ARC_BREAK_GLASS_USER = "glass"
    make_user("glass", "admin")
    page = signing_in()
    page.goto(live_server.url + "/login/")
    expect(page.get_by_role("link", name="Sign in with Microsoft")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_count(0)
    page.goto(live_server.url + "/login/?break-glass=1")
    page.get_by_label("User name").fill("glass")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    expect(page.locator(".account").get_by_text("glass · admin")).to_be_visible()
