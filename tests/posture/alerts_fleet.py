"""A small stored fleet with a scan whose change events the alert tests choose, built the way a
scan stores them (tests/web/conftest.py's clusters, ChangeEvent rows of the scan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from posture.alerts.rules import rule_create
from posture.models import AlertRule, ChangeEvent, Cluster, Scan, Scope
from tests.web.conftest import SUB, SUB2, add_cluster, finished_scan

# A cluster name from Azure that tries to add a header and markup.
HOSTILE_NAME = 'evil\r\nBcc: attacker@evil.test\r\nX-Injected: 1 <b onmouseover="x()">bold</b>'


@dataclass
class AlertFleet:
    scope: Scope
    scan: Scan
    clusters: list[Cluster] = field(default_factory=list)

    def change(self, cluster: int, control: str, before: str, after: str, scan: Scan | None = None) -> ChangeEvent:
        return ChangeEvent.objects.create(
            cluster=self.clusters[cluster], control=control, from_status=before, to_status=after, scan=scan or self.scan, at=timezone.now()
        )


def alert_fleet(name: str = "corp") -> AlertFleet:
    """Four clusters: 0 and 1 in SUB (resource groups rg-0, rg-1 in scope corp; tags Env=prod, env=dev), 2 in SUB2 (team=t2),
    3 named HOSTILE_NAME (tags env=dev, team=t3); no change events yet."""
    scope = Scope.objects.create(name=name, tenant_id="contoso.onmicrosoft.com")
    scan = finished_scan(scope, [SUB, SUB2])
    group = "rg" if name == "corp" else f"{name}-rg"  # ARM ids differ per scope
    clusters = [
        add_cluster(scope, scan, 0, name="alpha", tags={"Env": "prod"}, group=group),
        add_cluster(scope, scan, 1, name="bravo", tags={"env": "dev"}, group=group),
        add_cluster(scope, scan, 2, name="charlie", subscription=SUB2, group=group, tags={"team": "t2"}),
        add_cluster(scope, scan, 3, name=HOSTILE_NAME, group=group),
    ]
    return AlertFleet(scope, scan, clusters)


def regression_rule(name: str = "Regressions", **fields: Any) -> AlertRule:
    return rule_create(user=None, name=name, kind=AlertRule.Kind.CONTROL_REGRESSION, params=fields.pop("params", {}), **fields)
