"""The API's docs page in Debian's chromium, under the site's CSP (script-src 'self', style-src
'self'): Swagger UI's assets come from the app, it lists every operation, breaks no policy, and
"Try it out" answers with the signed-in session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import sign_in
from tests.browser.test_dashboard import watch_console
from tests.web.test_api_access import EXPECTED as API_ENDPOINTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_docs_page_lists_every_operation_under_the_csp(live_server, page, scanned_fleet, browser_admin, screenshot) -> None:
    problems = watch_console(page)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, live_server.url, browser_admin.username)
    response = page.goto(live_server.url + "/api/v1/docs/")
    assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
    operations = page.locator(".opblock")
    operations.first.wait_for()
    # Every endpoint of the access table but the schema, the docs page and the catch-all, and the export POST.
    assert operations.count() == len(API_ENDPOINTS) - 3 + 1
    assert page.get_by_text("Arc Posture API").first.is_visible()
    screenshot(page, "api-docs")

    # "Try it out" on the fleet summary: the session is the credential.
    page.locator("#operations-fleet-fleet_retrieve .opblock-summary").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    status = page.locator("#operations-fleet-fleet_retrieve .live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")

    assert all(url.startswith(live_server.url) for url in requests), [u for u in requests if not u.startswith(live_server.url)]
    assert problems == [], problems


def test_the_docs_page_sends_visitors_to_sign_in(live_server, page: Any) -> None:
    page.goto(live_server.url + "/api/v1/docs/")
    assert "/login/?next=/api/v1/docs/" in page.url
