"""Planning turns a scan's regressions into one notification per rule and recipient: only moves
into fail or unknown from another status, only what the rule's limits cover, only recipients who
receive at once, and nothing new when planned again."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from posture.alerts.planning import plan_scan_alerts
from posture.alerts.rules import subscribe
from posture.models import AlertRule, Notification
from tests.conftest import make_user
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.web.conftest import SUB2

pytestmark = pytest.mark.django_db


def plan(scan: Any, capture: Any) -> list[str]:
    with capture(execute=False):  # the sends are the delivery tests' business
        return plan_scan_alerts(scan)


def reported(rule: AlertRule) -> set[tuple[str, str, str, str]]:
    """(cluster name, control, from, to) of what the rule's notifications report, all recipients alike."""
    found = {tuple(tuple((c["name"], c["control"], c["from"], c["to"])) for c in n.items()) for n in rule.notifications.all()}
    assert len(found) <= 1, "every recipient of a rule gets the same changes"
    return set(found.pop()) if found else set()


def test_only_moves_into_fail_or_unknown_from_another_status_alert(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    rule = regression_rule(addresses=["soc@example.test"])
    for before, after in [
        ("pass", "fail"),
        ("pass", "unknown"),
        ("not_applicable", "fail"),
        ("excepted", "fail"),  # an exception that expired
        ("attested", "unknown"),
        ("fail", "unknown"),  # failing before: a standing failure changing shape
        ("unknown", "fail"),
        ("fail", "pass"),
        ("pass", "attested"),
    ]:
        fleet.change(0, "ARC-DEF-01" if before == "pass" and after == "fail" else "ARC-NP-01", before, after)
    ids = plan(fleet.scan, django_capture_on_commit_callbacks)
    assert len(ids) == 1
    assert reported(rule) == {
        ("alpha", "ARC-DEF-01", "pass", "fail"),
        ("alpha", "ARC-NP-01", "pass", "unknown"),
        ("alpha", "ARC-NP-01", "not_applicable", "fail"),
        ("alpha", "ARC-NP-01", "excepted", "fail"),
        ("alpha", "ARC-NP-01", "attested", "unknown"),
    }


def test_a_scan_without_regressions_or_without_rules_plans_nothing(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "fail", "pass")
    assert plan(fleet.scan, django_capture_on_commit_callbacks) == []  # no rule yet
    regression_rule(addresses=["soc@example.test"])
    assert plan(fleet.scan, django_capture_on_commit_callbacks) == []
    assert not Notification.objects.exists()


def test_each_limit_narrows_what_a_rule_covers(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")  # high; SUB, rg-0, Env=prod
    fleet.change(1, "ARC-PL-01", "pass", "fail")  # medium; SUB, rg-1, env=dev
    fleet.change(2, "ARC-NP-01", "pass", "unknown")  # high; SUB2, rg-2
    other = alert_fleet("other")
    other.change(0, "ARC-NP-01", "pass", "fail")  # another scope's scan: planned with that scan
    to = {"addresses": ["soc@example.test"]}
    rules = {
        "any": regression_rule("any", **to),
        "high": regression_rule("high", params={"min_severity": "high"}, **to),
        "severity medium": regression_rule("severity medium", severities=["medium"], **to),
        "control": regression_rule("control", controls=["ARC-PL-01"], **to),
        "subscription": regression_rule("subscription", subscriptions=[SUB2.upper()], **to),
        "resource group": regression_rule("resource group", resource_groups=["RG-1"], **to),
        "tag key": regression_rule("tag key", tags=[{"key": "ENV", "value": None}], **to),
        "tag value": regression_rule("tag value", tags=[{"key": "env", "value": "prod"}], **to),
        "scope": regression_rule("scope", scopes=[other.scope.pk], **to),
        "two limits": regression_rule("two limits", params={"min_severity": "high"}, subscriptions=[SUB2], **to),
        "disabled": regression_rule("disabled", enabled=False, **to),
    }
    plan(fleet.scan, django_capture_on_commit_callbacks)
    covered = {name: {(c, k) for c, k, _, _ in reported(rule)} for name, rule in rules.items()}
    assert covered == {
        "any": {("alpha", "ARC-NP-01"), ("bravo", "ARC-PL-01"), ("charlie", "ARC-NP-01")},
        "high": {("alpha", "ARC-NP-01"), ("charlie", "ARC-NP-01")},
        "severity medium": {("bravo", "ARC-PL-01")},
        "control": {("bravo", "ARC-PL-01")},
        "subscription": {("charlie", "ARC-NP-01")},
        "resource group": {("bravo", "ARC-PL-01")},
        "tag key": {("alpha", "ARC-NP-01"), ("bravo", "ARC-PL-01")},
        "tag value": {("alpha", "ARC-NP-01")},  # values compare with their case; keys without
        "scope": set(),
        "two limits": {("charlie", "ARC-NP-01")},
        "disabled": set(),
    }
    plan(other.scan, django_capture_on_commit_callbacks)
    assert {(c, k) for c, k, _, _ in reported(rules["scope"])} == {("alpha", "ARC-NP-01")}


def test_recipients_are_subscribed_users_receiving_at_once_and_the_rules_addresses_each_once(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    rule = regression_rule(addresses=["SOC@example.test", "noc@example.test"])
    users = {}
    for name, role, email in [
        ("vera", "viewer", "soc@example.test"),  # also a distribution address: one message, hers
        ("anna", "analyst", "anna@example.test"),
        ("dora", "viewer", "dora@example.test"),  # digest: not at once
        ("ivan", "viewer", "ivan@example.test"),  # deactivated
        ("nina", None, "nina@example.test"),  # no role: may not see the posture
        ("emil", "viewer", ""),  # no address
        ("bert", "viewer", "bert at example"),  # a bad address: a clear failed row
    ]:
        users[name] = make_user(name, role)
        users[name].email = email
        users[name].save()
        subscribe(user=users[name], rule=rule)
    subscribe(user=users["dora"], rule=rule, mode="digest", digest_hour=7)
    users["ivan"].is_active = False
    users["ivan"].save()
    ids = plan(fleet.scan, django_capture_on_commit_callbacks)
    rows = {n.recipient: n for n in Notification.objects.all()}
    assert sorted(rows) == ["anna@example.test", "bert at example", "noc@example.test", "soc@example.test"]
    assert rows["soc@example.test"].user == users["vera"] and rows["noc@example.test"].user is None
    assert rows["bert at example"].state == Notification.State.FAILED
    assert rows["bert at example"].last_error == "'bert at example' is not a valid email address."
    assert sorted(ids) == sorted(str(n.pk) for n in rows.values() if n.state == Notification.State.PENDING)
    assert len({n.message_id for n in rows.values()}) == 4
    assert all(n.message_id == f"<alert.{n.pk.hex}@127.0.0.1>" for n in rows.values())


def test_planning_a_scan_again_writes_nothing_new(django_capture_on_commit_callbacks) -> None:
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=["soc@example.test", "noc@example.test"])
    first = plan(fleet.scan, django_capture_on_commit_callbacks)
    assert len(first) == 2
    assert plan(fleet.scan, django_capture_on_commit_callbacks) == []
    assert Notification.objects.count() == 2


def test_a_rule_with_bad_fields_is_refused_with_every_problem_named() -> None:
    with pytest.raises(ValidationError) as refused:
        regression_rule(
            " ",
            params={"min_severity": "critical"},
            subscriptions=["not-a-guid"],
            controls=["ARC-XX-99"],
            severities=["urgent"],
            tags=[{"value": "x"}],
            scopes=[999],
            addresses=["soc@example.test", "a\nb@example.test"],
        )
    assert refused.value.message_dict == {
        "name": ["Give the rule a name of 1 to 120 characters."],
        "params": ["min_severity must be one of high, medium, low, not 'critical'."],
        "scopes": ["No scope has the id 999."],
        "subscriptions": ["'not-a-guid' is not a subscription id (a GUID)."],
        "tags": ["{'value': 'x'} is not a tag: a key (1 to 512 characters) and a value or null."],
        "controls": ["Unknown controls: ARC-XX-99."],
        "severities": ["Unknown severities: urgent."],
        "addresses": ["'a\\nb@example.test' is not a valid email address."],
    }
    assert not AlertRule.objects.exists()


def test_a_rule_keeps_its_limits_normalised() -> None:
    rule = regression_rule(
        "  Prod\nhigh  ", subscriptions=[SUB2.upper(), SUB2], resource_groups=["RG-1"], addresses=["Soc@example.test", "soc@EXAMPLE.test"]
    )
    rule.refresh_from_db()
    assert (rule.name, rule.params, rule.subscriptions, rule.resource_groups, rule.addresses) == (
        "Prod high",
        {"min_severity": "low"},
        [SUB2],
        ["rg-1"],
        ["Soc@example.test"],
    )
