"""The preview shows what a rule would send, message for message, writing nothing: what it
would have sent for each scope's last finished scan, or what a time-based rule sends now."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from posture.alerts import unsubscribe
from posture.alerts.messages import build_message
from posture.alerts.planning import plan_scan_alerts
from posture.alerts.preview import UNSUBSCRIBE_PLACEHOLDER, Preview, preview_rule
from posture.alerts.rules import clean_rule, subscribe
from posture.alerts.timed import plan_timed_alerts
from posture.models import AlertRule, Cluster, DigestEntry, Notification, Scan
from tests.conftest import make_user
from tests.posture.alert_kinds_fleet import kind_rule, scored
from tests.posture.alerts_fleet import HOSTILE_NAME, alert_fleet, regression_rule

pytestmark = pytest.mark.django_db

# What may differ between a preview and the send: the row's own ids (Message-ID), and the
# unsubscribe link's token (the preview shows a placeholder, the send the recipient's own).
OWN_IDS = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[A-Za-z0-9_:-]{40,}")
UNSUBSCRIBE_TOKEN = re.compile(r"/alerts/unsubscribe/([^/\s\"<>]+)/")


def normalised(recipient: str, subject: str, text: str, html: str) -> tuple[str, ...]:
    def ids(body: str) -> str:
        return OWN_IDS.sub("<id>", UNSUBSCRIBE_TOKEN.sub("/alerts/unsubscribe/<token>/", body))

    return (recipient, subject, ids(text), ids(html))


def sent(capture: Any) -> list[tuple[str, ...]]:
    messages = [build_message(n) for n in Notification.objects.order_by("recipient", "source")]
    return [normalised(m.to[0], m.subject, m.body, m.alternatives[0][0]) for m in messages]


def shown(previews: list[Preview]) -> list[tuple[str, ...]]:
    return sorted(normalised(p.recipient, p.subject, p.text, p.html) for p in previews)


def test_the_preview_of_a_scan_rule_equals_what_the_scan_later_sends(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    fleet.change(3, "ARC-PL-01", "pass", "unknown")  # the hostile name
    rule = regression_rule(addresses=["soc@example.test"])
    vera = make_user("vera", "viewer")
    vera.email = "vera@example.test"
    vera.save()
    subscribe(user=vera, rule=rule)
    dora = make_user("dora", "viewer")
    dora.email = "dora@example.test"
    dora.save()
    subscribe(user=dora, rule=rule, mode="digest", digest_hour=7)  # receives it in her digest
    previews = preview_rule(rule)
    assert not Notification.objects.exists() and not DigestEntry.objects.exists()  # the preview writes nothing
    assert [p.scan for p in previews] == [fleet.scan, fleet.scan]
    assert all(f"/scans/{fleet.scan.pk}/" in p.text for p in previews)  # ids the normalising below would hide
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
    assert shown(previews) == sent(django_capture_on_commit_callbacks)
    (soc,) = [p for p in previews if p.recipient == "soc@example.test"]
    assert soc.subject == "[Arc Posture] Regressions: 2 regressions on 2 clusters (ARC-NP-01, ARC-PL-01)"
    assert "evil" not in soc.subject and "&lt;b onmouseover" in soc.html and "<b onmouseover" not in soc.html


def test_the_preview_takes_the_last_finished_scan_of_each_scope_the_rule_covers(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    scored(fleet.clusters[0], 90, 60, fleet.scan)
    newer = Scan.objects.create(scope=fleet.scope, state=Scan.State.RUNNING, started_at=timezone.now())  # not finished
    other = alert_fleet("other")
    scored(other.clusters[1], 80, 40, other.scan)
    everywhere = kind_rule(AlertRule.Kind.SCORE_DROP, "everywhere", {"drop": 10})
    only_other = kind_rule(AlertRule.Kind.SCORE_DROP, "other", {"drop": 10}, scopes=[other.scope.pk])
    assert [p.scan for p in preview_rule(everywhere)] == [fleet.scan, other.scan]  # by scope name: corp, other
    assert newer not in [p.scan for p in preview_rule(everywhere)]
    assert [p.scan for p in preview_rule(only_other)] == [other.scan]
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
        plan_scan_alerts(other.scan)
    assert shown(preview_rule(everywhere)) == sorted(
        normalised(m.to[0], m.subject, m.body, m.alternatives[0][0]) for m in map(build_message, everywhere.notifications.all())
    )


def test_the_preview_of_a_timed_rule_shows_what_the_next_tick_sends(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    Cluster.objects.filter(pk=fleet.clusters[3].pk).update(
        connectivity_status="Offline", last_connectivity_at=timezone.now() - dt.timedelta(hours=9)
    )
    rule = kind_rule(AlertRule.Kind.CLUSTER_STALE, params={"hours": 4})
    previews = preview_rule(rule)
    assert len(previews) == 1 and previews[0].scan is None and not Notification.objects.exists()
    with django_capture_on_commit_callbacks(execute=False):
        plan_timed_alerts()
    assert shown(previews) == sent(django_capture_on_commit_callbacks)
    assert HOSTILE_NAME not in previews[0].html and "X-Injected: 1 &lt;b" in previews[0].html
    assert preview_rule(rule) == []  # sent already: nothing more to send now


def test_a_rule_without_recipients_still_previews_its_message() -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    rule = regression_rule(addresses=[])
    (preview,) = preview_rule(rule)
    assert preview.recipient == "" and preview.subject == "[Arc Posture] Regressions: 1 regression on 1 cluster (ARC-NP-01)"
    assert "alpha: Pass -> Fail" in preview.text


def test_an_unsaved_rule_previews_for_its_addresses() -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    Cluster.objects.filter(pk=fleet.clusters[1].pk).update(
        connectivity_status="Offline", last_connectivity_at=timezone.now() - dt.timedelta(hours=9)
    )
    draft = AlertRule(name="Draft", kind=AlertRule.Kind.CONTROL_REGRESSION, addresses=["soc@example.test"])
    clean_rule(draft)
    (preview,) = preview_rule(draft)
    assert (preview.recipient, preview.subject) == ("soc@example.test", "[Arc Posture] Draft: 1 regression on 1 cluster (ARC-NP-01)")
    stale = AlertRule(name="Stale draft", kind=AlertRule.Kind.CLUSTER_STALE, params={"hours": 4})
    clean_rule(stale)
    assert [(p.recipient, "bravo" in p.text) for p in preview_rule(stale)] == [("", True)]
    assert not AlertRule.objects.exists() and not Notification.objects.exists()


def accepted_tokens(body: str) -> list[str]:
    """Every string in `body` that unsubscribe.read accepts: the tokens of the unsubscribe links,
    and any other run of token characters (a token shown outside a link would do as much)."""
    candidates = set(UNSUBSCRIBE_TOKEN.findall(body)) | set(re.findall(r"[A-Za-z0-9_.:-]{20,}", body))
    accepted = []
    for candidate in candidates:
        try:
            unsubscribe.read(candidate)
        except unsubscribe.BadToken:
            continue
        accepted.append(candidate)
    return accepted


def test_no_preview_shows_a_working_unsubscribe_link(django_capture_on_commit_callbacks, settings: Any) -> None:
    settings.SITE_URL = "https://arc.example.test/posture?x=1&y=2"  # escaped in the HTML body
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    Cluster.objects.filter(pk=fleet.clusters[1].pk).update(
        connectivity_status="Offline", last_connectivity_at=timezone.now() - dt.timedelta(hours=9)
    )
    rule = regression_rule(addresses=["soc@example.test"])
    stale = kind_rule(AlertRule.Kind.CLUSTER_STALE, params={"hours": 4}, addresses=["noc@example.test"])
    vera = make_user("vera", "viewer")
    vera.email = "vera@example.test"
    vera.save()
    subscribe(user=vera, rule=rule)
    subscribe(user=vera, rule=stale)
    draft = AlertRule(name="Draft", kind=AlertRule.Kind.CONTROL_REGRESSION, addresses=["draft@example.test"])
    clean_rule(draft)
    previews = preview_rule(rule) + preview_rule(stale) + preview_rule(draft)
    assert sorted(p.recipient for p in previews) == sorted(
        ["soc@example.test", "vera@example.test", "noc@example.test", "vera@example.test", "draft@example.test"]
    )
    placeholder = f"https://arc.example.test/posture?x=1&y=2/alerts/unsubscribe/{UNSUBSCRIBE_PLACEHOLDER}/"
    for preview in previews:
        assert accepted_tokens(preview.text) == [] and accepted_tokens(preview.html) == [], preview.recipient
        assert f"Unsubscribe: {placeholder}" in preview.text
        assert f'<a href="{placeholder.replace("&", "&amp;")}">Unsubscribe</a>' in preview.html
    # The send carries each recipient's own link, which the same check finds.
    with django_capture_on_commit_callbacks(execute=False):
        plan_scan_alerts(fleet.scan)
    for notification in Notification.objects.all():
        message = build_message(notification)
        (token,) = accepted_tokens(message.body)
        assert unsubscribe.read(token).recipient == notification.recipient
