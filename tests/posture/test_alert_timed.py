"""Time-based kinds, planned by the periodic tick: a cluster stale or offline for more than N
hours alerts once per episode, an attestation or exception once before and once after it
expires; limits apply; a second tick writes nothing new."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from posture.alerts.messages import build_message
from posture.alerts.rules import subscribe
from posture.alerts.timed import plan_timed_alerts
from posture.models import AlertRule, Attestation, Cluster, Notification, RiskException
from posture.tasks import alert_tick
from tests.conftest import make_user
from tests.posture.alert_kinds_fleet import kind_rule
from tests.posture.alerts_fleet import HOSTILE_NAME, alert_fleet
from tests.web.conftest import SUB, SUB2

pytestmark = pytest.mark.django_db
Kind = AlertRule.Kind


def silent(cluster: Cluster, hours: float, status: str = "Offline", now: dt.datetime | None = None) -> dt.datetime:
    contact = (now or timezone.now()) - dt.timedelta(hours=hours)
    Cluster.objects.filter(pk=cluster.pk).update(connectivity_status=status, last_connectivity_at=contact)
    return contact


def tick(capture: Any, now: dt.datetime | None = None) -> dict[str, int]:
    with capture(execute=False):
        return plan_timed_alerts(now)


def reported(rule: AlertRule) -> list[tuple[str, str, str]]:
    """(source, name, to) of the rule's notifications, one per episode and recipient."""
    return sorted({(n.source, n.items()[0]["name"], n.items()[0]["to"]) for n in rule.notifications.all()})


def test_a_cluster_stale_or_offline_for_longer_than_the_rule_allows_alerts_once_per_episode(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    alpha, bravo, charlie, hostile = fleet.clusters
    start = silent(alpha, 5)  # Offline for 5 h
    silent(bravo, 2, "Connected")  # connected, last contact 2 h ago: not stale for the product
    silent(charlie, 30, "Connected")  # silent past ARC_STALE_AFTER_HOURS (24): stale
    silent(hostile, 3)  # Offline, but only for 3 h
    rule = kind_rule(Kind.CLUSTER_STALE, params={"hours": 4})
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 2
    charlie.refresh_from_db()
    assert reported(rule) == sorted(  # by source: cluster ids sort as text ("11" before "9")
        [
            (f"stale:{alpha.pk}:{start.isoformat()}", "alpha", "Offline"),
            (f"stale:{charlie.pk}:{charlie.last_connectivity_at.isoformat()}", "charlie", "Connected"),
        ]
    )
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 0  # the same episodes
    assert tick(django_capture_on_commit_callbacks, timezone.now() + dt.timedelta(hours=2))["alert_episodes_planned"] == 1  # hostile's 5 h
    silent(alpha, 0.5, "Connected")  # back: the episode ends
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 0
    again = silent(alpha, 6)  # silent again: a new episode
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 1
    assert (f"stale:{alpha.pk}:{again.isoformat()}", "alpha", "Offline") in reported(rule)
    assert rule.notifications.count() == 4


def test_stale_alerts_honour_the_limits_and_keep_azure_strings_out_of_headers(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    for cluster in fleet.clusters:
        silent(cluster, 8)
    other = alert_fleet("other")
    rules = {
        "dev": kind_rule(Kind.CLUSTER_STALE, "dev", {"hours": 4}, tags=[{"key": "env", "value": "dev"}]),
        "sub2": kind_rule(Kind.CLUSTER_STALE, "sub2", {"hours": 4}, subscriptions=[SUB2]),
        "other scope": kind_rule(Kind.CLUSTER_STALE, "other scope", {"hours": 4}, scopes=[other.scope.pk]),
        "longer": kind_rule(Kind.CLUSTER_STALE, "longer", {"hours": 12}),
    }
    tick(django_capture_on_commit_callbacks)
    assert {name: sorted(r[1] for r in reported(rule)) for name, rule in rules.items()} == {
        "dev": sorted(["bravo", HOSTILE_NAME]),
        "sub2": ["charlie"],
        "other scope": [],
        "longer": [],
    }
    hostile = rules["dev"].notifications.get(trigger__items__0__cluster=fleet.clusters[3].pk)
    message = build_message(hostile)
    assert message.subject == "[Arc Posture] dev: 1 cluster stale or offline for more than 4 h"
    assert "evil" not in str(message.message()).split("\n\n", 1)[0]  # in no header
    body_html = message.alternatives[0][0]
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;bold&lt;/b&gt;" in body_html and "<b onmouseover" not in body_html


def test_a_later_subscriber_does_not_receive_episodes_already_alerted(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    silent(fleet.clusters[0], 8)
    rule = kind_rule(Kind.CLUSTER_STALE, params={"hours": 4})
    tick(django_capture_on_commit_callbacks)
    late = make_user("late", "viewer")
    late.email = "late@example.test"
    late.save()
    subscribe(user=late, rule=rule)
    tick(django_capture_on_commit_callbacks)
    assert list(Notification.objects.values_list("recipient", flat=True)) == ["soc@example.test"]


def test_the_alert_tick_task_plans_timed_alerts(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    silent(fleet.clusters[0], 8)
    rule = kind_rule(Kind.CLUSTER_STALE, params={"hours": 4})
    with django_capture_on_commit_callbacks(execute=False):
        counts = alert_tick()
    assert counts["alert_episodes_planned"] == 1 and rule.notifications.count() == 1


def attestation(cluster: Cluster | None, days: float, **target: Any) -> Attestation:
    expires = timezone.now() + dt.timedelta(days=days)
    return Attestation.objects.create(control="ARC-NP-02", statement="checked", cluster=cluster, expires_at=expires, **target)


def test_an_attestation_or_exception_alerts_once_when_it_nears_its_expiry_and_once_when_it_expires(
    django_capture_on_commit_callbacks,
) -> None:
    fleet = alert_fleet()
    soon = attestation(fleet.clusters[0], 3)
    attestation(fleet.clusters[1], 30)  # outside the warning
    attestation(fleet.clusters[2], -2)  # expired before the rule existed: a standing state
    Attestation.objects.create(
        control="ARC-NP-02", statement="x", cluster=fleet.clusters[0], expires_at=soon.expires_at, revoked_at=timezone.now()
    )
    exception = RiskException.objects.create(
        control="ARC-PL-01",
        justification="firewall",
        owner="ops",
        state=RiskException.State.APPROVED,
        subscription_id=SUB2,
        expires_at=timezone.now() + dt.timedelta(days=5),
    )
    RiskException.objects.create(control="ARC-PL-01", justification="asked", owner="ops", subscription_id=SUB, expires_at=soon.expires_at)
    week = kind_rule(Kind.GOVERNANCE_EXPIRY, "week", {"days": 7})
    sub = kind_rule(Kind.GOVERNANCE_EXPIRY, "sub", {"days": 7}, subscriptions=[SUB])
    expired_only = kind_rule(Kind.GOVERNANCE_EXPIRY, "expired only", {"days": 0, "records": ["exceptions"]})
    tick(django_capture_on_commit_callbacks)
    assert [(s.rsplit(":", 1)[-1], name, to) for s, name, to in reported(week)] == sorted(
        [("expiring", "cluster alpha", "expires in 2 d 23 h"), ("expiring", f"subscription {SUB2}", "expires in 4 d 23 h")]
    )
    assert [name for _, name, _ in reported(sub)] == ["cluster alpha"]
    assert reported(expired_only) == []
    tick(django_capture_on_commit_callbacks)
    assert Notification.objects.count() == 3
    tick(django_capture_on_commit_callbacks, timezone.now() + dt.timedelta(days=6))  # both lapsed
    assert sorted(s for s, _, _ in reported(week) if s.endswith(":expired")) == sorted(
        [
            f"expiry:attestation:{soon.pk}:{soon.expires_at.isoformat()}:expired",
            f"expiry:exception:{exception.pk}:{exception.expires_at.isoformat()}:expired",
        ]
    )
    assert [(name, to) for _, name, to in reported(expired_only)] == [(f"subscription {SUB2}", "expired")]
    message = build_message(expired_only.notifications.get())
    assert message.subject == "[Arc Posture] expired only: 1 expired attestation or exception (ARC-PL-01)"
    assert f"exception {exception.pk}, expiry" in message.body and f"/exceptions/{exception.pk}/" in message.body


def test_a_tick_plans_a_bounded_number_of_episodes_newest_first_and_the_next_tick_the_rest(
    django_capture_on_commit_callbacks, monkeypatch
) -> None:
    monkeypatch.setattr("posture.alerts.timed.EPISODES_PER_TICK", 1)
    monkeypatch.setattr("posture.alerts.timed.PAGE", 1)  # and across pages
    fleet = alert_fleet()
    silent(fleet.clusters[0], 30)
    silent(fleet.clusters[1], 6)
    rule = kind_rule(Kind.CLUSTER_STALE, params={"hours": 4})
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 1
    assert [name for _, name, _ in reported(rule)] == ["bravo"]
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 1
    assert tick(django_capture_on_commit_callbacks)["alert_episodes_planned"] == 0
    assert sorted(name for _, name, _ in reported(rule)) == ["alpha", "bravo"]


def test_a_rule_that_cannot_be_planned_holds_up_neither_the_others_nor_the_tick(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    silent(fleet.clusters[0], 8)
    broken = kind_rule(Kind.CLUSTER_STALE, "broken", params={"hours": 4})
    AlertRule.objects.filter(pk=broken.pk).update(params={})  # stored before its kind checked hours
    rule = kind_rule(Kind.CLUSTER_STALE, "sound", params={"hours": 4})
    counts = tick(django_capture_on_commit_callbacks)
    assert (counts["alert_rules_failed"], counts["alert_episodes_planned"]) == (1, 1)
    assert rule.notifications.count() == 1 and not broken.notifications.exists()
