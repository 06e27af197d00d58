"""The alert rules pages: analysts and admins create, change, disable and delete rules, viewers
only read and subscribe; the service's errors show next to the fields they name; the preview
shows a hostile cluster name only escaped."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from posture.alerts.planning import plan_scan_alerts
from posture.alerts.rules import rule_create, subscribe
from posture.models import AlertOptOut, AlertRule, AlertSubscription, DigestEntry, Notification, Scope
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.web.conftest import SUB, sample_notification

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "High regressions",
    "kind": "control_regression",
    "params": '{"min_severity": "high"}',
    "enabled": "on",
    "subscriptions": SUB.upper(),
    "resource_groups": "RG-Prod\nrg-shared",
    "tags": "env=prod, eu\nowner",
    "controls": ["ARC-NP-01", "ARC-PL-01"],
    "severities": ["high"],
    "addresses": "soc@example.test",
    "action": "save",
}


def field_error(page: str, field: str) -> str:
    """The error text shown for `field` (the element its aria-describedby names)."""
    match = re.search(rf'<span class="error small field-error" id="id_{field}_error">(.*?)</span>', page) or re.search(
        rf'id="id_{field}_error"[^>]*>(.*?)</', page, re.S
    )
    return match.group(1) if match else ""


def test_an_analyst_creates_a_rule_from_the_form_with_its_limits(analyst_client: Client, analyst: Any) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    response = analyst_client.post(reverse("alert-rule-create"), GOOD | {"scopes": [str(scope.pk)]})
    rule = AlertRule.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("alert-rule-detail", args=[rule.pk])
    assert (rule.name, rule.params, rule.enabled, rule.created_by) == ("High regressions", {"min_severity": "high"}, True, analyst)
    assert rule.scopes == [scope.pk] and rule.subscriptions == [SUB] and rule.resource_groups == ["rg-prod", "rg-shared"]
    assert rule.tags == [{"key": "env", "value": "prod, eu"}, {"key": "owner", "value": None}]
    assert (rule.controls, rule.severities, rule.addresses) == (["ARC-NP-01", "ARC-PL-01"], ["high"], ["soc@example.test"])
    page = analyst_client.get(reverse("alert-rule-list")).content.decode()
    assert "scopes corp" in page and "tags env=prod, eu, owner" in page and "1 subscription" in page


def test_editing_a_rule_keeps_what_it_showed_and_saves_the_change(analyst_client: Client) -> None:
    rule = regression_rule("Before", tags=[{"key": "env", "value": "prod"}], addresses=["soc@example.test"])
    form = analyst_client.get(reverse("alert-rule-edit", args=[rule.pk])).context["form"]
    shown = {name: form[name].value() for name in form.fields}  # as the page fills the fields in
    assert (shown["tags"], shown["addresses"], shown["params"]) == ("env=prod", "soc@example.test", '{"min_severity": "low"}')
    data = {k: v for k, v in shown.items() if v not in (None, False, [])} | {"name": "After", "action": "save"}
    analyst_client.post(reverse("alert-rule-edit", args=[rule.pk]), data)
    rule.refresh_from_db()
    assert (rule.name, rule.tags, rule.addresses, rule.enabled) == ("After", [{"key": "env", "value": "prod"}], ["soc@example.test"], True)


def test_the_rule_checks_errors_show_next_to_the_fields_they_name(analyst_client: Client) -> None:
    bad = GOOD | {"params": '{"min_severity": "severe"}', "subscriptions": "not-a-guid", "addresses": "soc@example.test\nnobody"}
    response = analyst_client.post(reverse("alert-rule-create"), bad)
    page = response.content.decode()
    assert response.status_code == 200 and not AlertRule.objects.exists()
    assert "min_severity must be one of high, medium, low, not &#x27;severe&#x27;." in field_error(page, "params")
    assert "&#x27;not-a-guid&#x27; is not a subscription id (a GUID)." in field_error(page, "subscriptions")
    assert "&#x27;nobody&#x27; is not a valid email address." in field_error(page, "addresses")
    assert "Please correct the fields marked below." in page
    response = analyst_client.post(reverse("alert-rule-create"), GOOD | {"params": "[1]", "name": " "})
    assert "Give a JSON object" in field_error(response.content.decode(), "params")
    assert "This field is required." in field_error(response.content.decode(), "name")


def test_viewers_cannot_create_change_or_delete_rules_and_see_no_buttons_for_it(viewer_client: Client) -> None:
    rule = regression_rule()
    for name in ("alert-rule-edit", "alert-rule-enabled", "alert-rule-delete"):
        assert viewer_client.post(reverse(name, args=[rule.pk]), GOOD).status_code == 403, name
    assert viewer_client.post(reverse("alert-rule-create"), GOOD).status_code == 403
    rule.refresh_from_db()
    assert rule.name == "Regressions" and rule.enabled and AlertRule.objects.count() == 1
    for url in (reverse("alert-rule-list"), reverse("alert-rule-detail", args=[rule.pk])):
        page = viewer_client.get(url).content.decode()
        assert reverse("alert-rule-create") not in page and reverse("alert-rule-edit", args=[rule.pk]) not in page
        assert reverse("alert-rule-delete", args=[rule.pk]) not in page and reverse("alert-rule-subscription", args=[rule.pk]) in page


def test_a_viewer_subscribes_at_once_then_as_a_digest_then_unsubscribes(viewer_client: Client, viewer: Any) -> None:
    rule = regression_rule()
    url = reverse("alert-rule-subscription", args=[rule.pk])
    prefix = f"r{rule.pk}-"
    response = viewer_client.post(url, {prefix + "mode": "immediate", "back": "list"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("alert-rule-list")
    assert AlertSubscription.objects.get(user=viewer, rule=rule).mode == "immediate"
    assert "You receive Regressions as they happen." in response.content.decode()
    assert "Your account has no email address" in response.content.decode()  # vera has none: told, not silent
    viewer_client.post(url, {prefix + "mode": "digest", prefix + "digest_hour": "18"})
    subscription = AlertSubscription.objects.get(user=viewer, rule=rule)
    assert (subscription.mode, subscription.digest_hour) == ("digest", 18)
    page = viewer_client.get(reverse("alert-rule-detail", args=[rule.pk])).content.decode()
    assert re.search(r'value="digest"[^>]*checked', page) and re.search(r'<option value="18" selected>', page)
    response = viewer_client.post(url, {prefix + "mode": "digest", prefix + "digest_hour": "24"}, follow=True)
    assert "Subscription not changed" in response.content.decode()
    assert AlertSubscription.objects.get(user=viewer, rule=rule).digest_hour == 18
    viewer_client.post(url, {prefix + "mode": "none"})
    assert not AlertSubscription.objects.exists()


def waiting(user: Any, rule: AlertRule, source: str, notification: Notification | None = None) -> DigestEntry:
    """An entry of `rule` for `user`'s digest: pending, or sent in `notification`."""
    now = timezone.now()
    items = [{"event": 1, "cluster": None, "name": "alpha", "control": "ARC-NP-01", "from": "pass", "to": "fail"}]
    return DigestEntry.objects.create(
        user=user,
        rule=rule,
        rule_name=rule.name,
        source=source,
        items=items,
        created_at=now,
        due_at=now + dt.timedelta(hours=3),
        notification=notification,
    )


def test_unsubscribing_on_the_page_drops_what_waits_for_my_digest_of_that_rule(viewer_client: Client, viewer: Any, analyst: Any) -> None:
    rule, other = regression_rule("Mine"), regression_rule("Other")
    subscribe(user=viewer, rule=rule, mode="digest", digest_hour=7)
    subscribe(user=viewer, rule=other, mode="digest", digest_hour=7)
    subscribe(user=analyst, rule=rule, mode="digest", digest_hour=7)
    digest = sample_notification(None, viewer, state=Notification.State.SENT)
    sent = waiting(viewer, rule, "scan:1", digest)  # in a digest already: stays with it
    pending = waiting(viewer, rule, "scan:2")
    kept = [waiting(viewer, other, "scan:2"), waiting(analyst, rule, "scan:2")]  # another rule, another user
    prefix = f"r{rule.pk}-"
    response = viewer_client.post(reverse("alert-rule-subscription", args=[rule.pk]), {prefix + "mode": "none"}, follow=True)
    assert "You are not subscribed to Mine." in response.content.decode()
    assert not AlertSubscription.objects.filter(user=viewer, rule=rule).exists()
    assert not DigestEntry.objects.filter(pk=pending.pk).exists()
    assert set(DigestEntry.objects.values_list("pk", flat=True)) == {sent.pk, *(e.pk for e in kept)}
    # Switching a digest to immediate mail keeps what waits: it still goes out in the next digest.
    url = reverse("alert-rule-subscription", args=[other.pk])
    viewer_client.post(url, {f"r{other.pk}-mode": "immediate"})
    assert AlertSubscription.objects.get(user=viewer, rule=other).mode == "immediate"
    assert DigestEntry.objects.filter(pk=kept[0].pk, notification__isnull=True).exists()


def test_the_list_shows_each_rules_subscribers_and_my_own_subscription(viewer_client: Client, viewer: Any, analyst: Any) -> None:
    mine, other = regression_rule("Mine"), regression_rule("Other")
    subscribe(user=viewer, rule=mine, mode="digest", digest_hour=6)
    subscribe(user=analyst, rule=mine)
    subscribe(user=analyst, rule=other)
    page = viewer_client.get(reverse("alert-rule-list"))
    forms = {rule.name: form for rule, form in page.context["rows"]}
    counts = {rule.name: rule.subscriber_count for rule, _ in page.context["rows"]}
    assert counts == {"Mine": 2, "Other": 1}
    assert forms["Mine"].initial == {"mode": "digest", "digest_hour": 6} and forms["Other"].initial == {"mode": "none"}


def test_an_analyst_disables_enables_and_deletes_a_rule_and_its_history_stays(analyst_client: Client, viewer: Any) -> None:
    rule = regression_rule()
    subscribe(user=viewer, rule=rule)
    analyst_client.post(reverse("alert-rule-enabled", args=[rule.pk]), {"enabled": "0"})
    rule.refresh_from_db()
    assert not rule.enabled
    analyst_client.post(reverse("alert-rule-enabled", args=[rule.pk]), {"enabled": "1"})
    rule.refresh_from_db()
    assert rule.enabled
    sent = sample_notification(rule, viewer)
    response = analyst_client.post(reverse("alert-rule-delete", args=[rule.pk]))
    assert response["Location"] == reverse("alert-rule-list")
    assert not AlertRule.objects.exists() and not AlertSubscription.objects.exists()
    sent.refresh_from_db()
    assert sent.rule is None and sent.rule_name == "Regressions"


def test_the_preview_page_escapes_hostile_names_in_a_sandboxed_frame(analyst_client: Client, settings: Any) -> None:
    settings.SITE_URL = "https://arc.example.test"
    fleet = alert_fleet()
    fleet.change(3, "ARC-NP-01", "pass", "fail")
    rule = rule_create(user=None, name='<img src=x onerror="alert(1)">', kind="control_regression", addresses=["soc@example.test"])
    page = analyst_client.get(reverse("alert-rule-preview", args=[rule.pk])).content.decode()
    assert "<img src=x" not in page and "<b onmouseover" not in page and "Bcc: attacker" not in page.split("<pre>")[0]
    frames = re.findall(r'<iframe sandbox="" srcdoc="([^"]*)"', page)
    assert len(frames) == 1
    # The frame's document is the HTML body, escaped once more into the attribute: markup from
    # Azure is text there too (&amp;lt;b …), never an element of this page or of the frame.
    assert "&amp;lt;b onmouseover=&amp;quot;x()&amp;quot;&amp;gt;bold&amp;lt;/b&amp;gt;" in frames[0]
    assert "<pre>" in page and "evil  Bcc: attacker@evil.test" in page  # the text body, one line, escaped
    assert Notification.objects.count() == 0


def test_preview_of_an_unsaved_form_shows_what_it_would_send_and_saves_nothing(analyst_client: Client) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    data = GOOD | {
        "action": "preview",
        "subscriptions": "",
        "resource_groups": "",
        "tags": "",
        "controls": [],
        "addresses": "noc@example.test",
    }
    response = analyst_client.post(reverse("alert-rule-create"), data)
    assert response.status_code == 200 and not AlertRule.objects.exists()
    [preview] = response.context["previews"]
    assert preview.recipient == "noc@example.test" and "alpha" in preview.text
    response = analyst_client.post(reverse("alert-rule-create"), data | {"addresses": "bad"})
    assert response.context["previews"] is None and "is not a valid email address" in field_error(response.content.decode(), "addresses")


def test_a_viewer_cannot_preview_a_rule(viewer_client: Client) -> None:
    rule = regression_rule(addresses=["soc@example.test"])
    assert viewer_client.get(reverse("alert-rule-preview", args=[rule.pk])).status_code == 403


def test_the_form_lists_each_kinds_parameters_and_refuses_a_limit_the_kind_cannot_apply(analyst_client: Client) -> None:
    page = analyst_client.get(reverse("alert-rule-create")).content.decode()
    for _, label in AlertRule.Kind.choices:
        assert f"<li>{escape(label)}: " in page, label
    assert "<code>{&quot;min_severity&quot;: &quot;low&quot;}</code> by default" in page
    response = analyst_client.post(reverse("alert-rule-create"), GOOD | {"kind": "scan_failed", "params": ""})
    assert "cannot be limited by subscriptions" in field_error(response.content.decode(), "subscriptions")
    assert not AlertRule.objects.exists()


def test_the_rule_page_marks_a_distribution_address_that_unsubscribed(viewer_client: Client) -> None:
    rule = regression_rule(addresses=["SOC@example.test", "noc@example.test"])
    AlertOptOut.objects.create(rule=rule, address="soc@example.test")
    page = viewer_client.get(reverse("alert-rule-detail", args=[rule.pk])).content.decode()
    assert re.search(r"<div>SOC@example.test <span class=\"badge muted\">unsubscribed \d{4}-\d\d-\d\d</span></div>", page)
    assert "<div>noc@example.test</div>" in page


def test_the_rule_page_says_when_a_rule_has_matched_nothing_and_when_it_last_did(viewer_client: Client) -> None:
    fleet = alert_fleet()
    rule = regression_rule(addresses=["soc@example.test"])
    page = viewer_client.get(reverse("alert-rule-detail", args=[rule.pk])).content.decode()
    assert 'Last matched</dt><dd><span class="muted">never: nothing it covers has happened' in page
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    fleet.change(1, "ARC-NP-01", "pass", "unknown")
    plan_scan_alerts(fleet.scan)
    page = viewer_client.get(reverse("alert-rule-detail", args=[rule.pk])).content.decode()
    assert ': 2 items (<a href="/scans/' in page and "never: nothing" not in page
