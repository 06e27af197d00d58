"""Alerts in a real browser, on a scan of the emulator fleet: an analyst creates a rule from the
Alerts page, previews it (the hostile cluster name only as text in a sandboxed frame), saves it and
subscribes to a daily digest; a viewer subscribes at once but finds no button to change the rule."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from posture.alerts.messages import one_line
from posture.models import AlertRule, AlertSubscription, ChangeEvent, Cluster, Scan
from tests.browser.conftest import sign_in
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_analyst_creates_previews_and_subscribes_to_a_rule_and_a_viewer_subscribes(
    live_server, browser, scanned_fleet: Scan, transactional_db: Any, screenshot
) -> None:
    hostile = Cluster.objects.filter(name__contains="<").order_by("name").first()
    ChangeEvent.objects.create(
        cluster=hostile, control="ARC-NP-01", from_status="pass", to_status="fail", scan=scanned_fleet, at=timezone.now()
    )
    analyst, viewer = make_user("anna-analyst", "analyst"), make_user("vera-viewer", "viewer")
    base = live_server.url
    dialogs: list[str] = []

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, base, analyst.username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Name", exact=True).fill("Network policy regressions")
    page.get_by_label("Parameters (JSON)").fill('{"min_severity": "high"}')
    page.get_by_label("Tags").fill("not-a-tag=\n=value")
    page.get_by_label("Distribution addresses").fill("soc@example.test")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#id_tags_error")).to_contain_text("is not a tag")  # the service's error, by its field

    page.get_by_label("Tags").fill("")
    page.get_by_role("button", name="Preview").click()
    frame = page.locator("iframe[sandbox='']")
    expect(frame).to_have_count(1)
    body = page.frame_locator("iframe[sandbox='']").locator("body")
    expect(body).to_contain_text(one_line(hostile.name))  # as text: its markup is no element
    assert page.frame_locator("iframe[sandbox='']").locator("script, img").count() == 0
    assert not AlertRule.objects.exists()  # a preview saves nothing
    screenshot(page, "alert-rule-preview")

    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Alert rule Network policy regressions created.")
    rule = AlertRule.objects.get()
    assert (rule.params, rule.addresses, rule.created_by) == ({"min_severity": "high"}, ["soc@example.test"], analyst)
    page.get_by_label("Daily digest").check()
    page.get_by_label("Digest at").select_option("9")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("in a daily digest at 09:00 UTC")
    context.close()

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, viewer.username)
    page.goto(base + reverse("alert-rule-list"))
    expect(page.get_by_role("link", name="New rule")).to_have_count(0)
    row = page.locator("table.alert-rules tbody tr").filter(has_text="Network policy regressions")
    expect(row.locator("td[data-label=Subscribers]")).to_have_text("1")
    row.get_by_label("Immediately").check()
    row.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("You receive Network policy regressions as they happen.")
    expect(page.locator("table.alert-rules td[data-label=Subscribers]")).to_have_text("2")
    page.get_by_role("link", name="Network policy regressions").click()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    screenshot(page, "alert-rule-viewer")
    context.close()

    modes = dict(AlertSubscription.objects.values_list("user__username", "mode"))
    assert modes == {"anna-analyst": "digest", "vera-viewer": "immediate"} and dialogs == []
