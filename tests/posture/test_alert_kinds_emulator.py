"""Two emulator scans where the fleet gets worse, planned for the scan-based kinds from what the
scans stored: Private Link turned off, the scores that fell, a cluster that appeared failing; the
first scan (every cluster new) and a third scan that changed nothing alert on nothing."""

from __future__ import annotations

from typing import Any

import pytest

from posture.alerts.preview import preview_rule
from posture.models import AlertRule, Cluster, ControlResult, Notification, ScoreHistory, Status
from tests.posture.alert_kinds_fleet import kind_rule
from tests.posture.exports_fleet import run_scan

pytestmark = pytest.mark.django_db(transaction=True)
Kind = AlertRule.Kind


def reported(rule: AlertRule) -> set[tuple[Any, ...]]:
    return {(i["cluster"], i["control"], i["from"], i["to"]) for n in rule.notifications.all() for i in n.items()}


def test_scan_based_kinds_alert_on_what_the_second_scan_stored(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=30, seed=11)
    scope = emulator_scope(emulator)
    arriving = next(emulator.fleet.clusters())["id"]
    emulator.fleet.remove_cluster(arriving)  # appears in the second scan
    rules = {
        "private link": kind_rule(Kind.PRIVATE_LINK, "private link"),
        "score": kind_rule(Kind.SCORE_DROP, "score", {"drop": 1}),
        "new": kind_rule(Kind.NEW_FAILING_CLUSTER, "new"),
        "failed": kind_rule(Kind.SCAN_FAILED, "failed"),
    }
    run_scan(scope)
    assert not Notification.objects.exists()  # every cluster new, nothing changed yet
    enabled = [
        r.cluster
        for r in ControlResult.objects.filter(control="ARC-PL-01", status=Status.PASS).select_related("cluster").order_by("cluster__name")
        if not r.cluster.facts.get("gateway_enabled")
    ]
    turned_off = enabled[0]
    emulator.fleet.update_cluster(turned_off.arm_id, {"properties": {"privateLinkState": "Disabled"}})
    emulator.fleet.restore_cluster(arriving)
    second = run_scan(scope)

    assert reported(rules["private link"]) == {(turned_off.pk, "ARC-PL-01", "pass", "fail")}
    dropped = {
        h.cluster_id
        for h in ScoreHistory.objects.filter(scan=second)
        if (prev := ScoreHistory.objects.filter(cluster_id=h.cluster_id, at__lt=h.at).order_by("-at").first()) and prev.score > h.score
    }
    assert turned_off.pk in dropped and {c for c, *_ in reported(rules["score"])} == dropped
    new = Cluster.objects.get(key=arriving.lower())
    failing = set(ControlResult.objects.filter(cluster=new, status=Status.FAIL).values_list("control", flat=True))
    assert failing and reported(rules["new"]) == {(new.pk, control, "new", "fail") for control in failing}
    assert not rules["failed"].notifications.exists()
    assert all(n.scan_id == second.pk for n in Notification.objects.all())
    assert [p.subject for p in preview_rule(rules["private link"])] == [
        "[Arc Posture] private link: 1 Private Link change on 1 cluster (ARC-PL-01)"
    ]

    count = Notification.objects.count()
    run_scan(scope)  # nothing changed: nothing more
    assert Notification.objects.count() == count
