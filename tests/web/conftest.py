"""A small evaluated fleet built the way a scan stores one: normalized ARG rows →
Cluster rows → evaluate_scope (twice, so pages have a previous snapshot and drift)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from posture import governance, normalize, tokens
from posture.alerts.routing import message_id
from posture.alerts.rules import rule_create
from posture.alerts.unsubscribe import token as unsubscribe_token
from posture.exports.filters import ExportFilters
from posture.models import AlertRule, Cluster, Notification, QueryEvidence, Scan, ScanBatch, Scope
from posture.roles import ANALYST, VIEWER
from posture.scans.evaluation import evaluate_scope
from tests.conftest import make_user

SUB = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', '=HYPERLINK("http://evil","x")')


@dataclass
class Fleet:
    scope: Scope
    scan: Scan
    clusters: list[Cluster] = field(default_factory=list)


def cluster_row(n: int, subscription: str = SUB, group: str = "rg", **row: Any) -> dict[str, Any]:
    now = timezone.now()
    name = row.pop("name", f"c{n:03d}")
    base = {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}-{n % 3}/providers/Microsoft.Kubernetes/connectedClusters/c{n:03d}",
        "name": name,
        "location": ("eastus", "westeurope")[n % 2],
        "subscriptionId": subscription,
        "resourceGroup": f"{group}-{n % 3}",
        "connectivityStatus": "Offline" if n % 5 == 4 else "Connected",
        "lastConnectivityTime": (now - dt.timedelta(hours=1 if n % 5 != 4 else 72)).isoformat(),
        "privateLinkState": "Enabled" if n % 4 == 0 else "Disabled",
        "privateLinkScopeResourceId": f"/subscriptions/{subscription}/resourceGroups/net/providers/Microsoft.HybridCompute/privateLinkScopes/pls"
        if n % 4 == 0
        else None,
        "workloadIdentityEnabled": n % 3 != 0,
        "distribution": ("k3s", "aks", "openshift")[n % 3],
        "infrastructure": ("generic", "azure_stack_hci")[n % 2],
        "tags": {"env": ("prod", "dev")[n % 2], "team": f"t{n % 4}"},
    }
    base.update(row)
    return base


def add_cluster(scope: Scope, scan: Scan, n: int, **row: Any) -> Cluster:
    data = cluster_row(n, **row)
    facts = normalize.finish(normalize.cluster_record(data))
    now = timezone.now()
    return Cluster.objects.create(
        arm_id=data["id"],
        name=facts["name"],
        subscription_id=facts["subscription_id"],
        resource_group=facts["resource_group"],
        location=facts["location"],
        tags=facts["tags"],
        scope=scope,
        distribution=facts["distribution"] or "",
        infrastructure=facts["infrastructure"] or "",
        connectivity_status=facts["connectivity_status"] or "",
        last_connectivity_at=normalize.parse_time(facts["last_connectivity_time"]) if facts["last_connectivity_time"] else None,
        network_path=normalize.network_path(facts),
        facts=facts,
        facts_hash=normalize.fact_hash(facts),
        facts_scan=scan,
        last_seen_scan=scan,
        first_seen_at=now,
        last_seen_at=now,
    )


def finished_scan(scope: Scope, subscriptions: list[str]) -> Scan:
    now = timezone.now()
    scan = Scan.objects.create(
        scope=scope,
        state=Scan.State.SUCCEEDED,
        trigger=Scan.Trigger.COMMAND,
        started_at=now - dt.timedelta(minutes=2),
        finished_at=now,
        subscriptions=len(subscriptions),
        batches_total=1,
        batches_done=1,
        requests=7,
        clusters=0,
    )
    batch = ScanBatch.objects.create(scan=scan, number=1, subscriptions=subscriptions, state=ScanBatch.State.DONE, finished_at=now)
    body = b'{"data": [], "count": 0}\n'
    QueryEvidence.objects.create(
        batch=batch,
        name="clusters",
        request="arcResources | project id",
        api_version="2022-10-01",
        started_at=now,
        finished_at=now,
        requests=1,
        rows=0,
        sha256=hashlib.sha256(body).hexdigest(),
        raw=gzip.compress(body),
    )
    return scan


@pytest.fixture
def make_fleet(db: Any) -> Callable[..., Fleet]:
    """make_fleet(n, name="corp", hostile=False): n evaluated clusters in one scope."""

    def make(n: int = 5, name: str = "corp", hostile: bool = False) -> Fleet:
        scope = Scope.objects.create(name=name, tenant_id="contoso.onmicrosoft.com")
        scan = finished_scan(scope, [SUB, SUB2])
        fleet = Fleet(scope, scan)
        for i in range(n):
            # Resource groups differ per scope, so several fleets can coexist.
            extra: dict[str, Any] = {"subscription": SUB2 if i % 7 == 6 else SUB, "group": "rg" if name == "corp" else f"{name}-rg"}
            if hostile and i < len(HOSTILE):
                extra.update(name=HOSTILE[i], tags={HOSTILE[i]: HOSTILE[(i + 1) % len(HOSTILE)]})
            fleet.clusters.append(add_cluster(scope, scan, i, **extra))
        evaluate_scope(scope.pk, scan=scan)
        # A re-evaluation after a change gives the pages a previous snapshot and drift (within
        # one scan, a change would only revise that scan's provisional verdicts).
        first = fleet.clusters[0]
        facts = dict(first.facts, workload_identity_enabled=not first.facts["workload_identity_enabled"])
        Cluster.objects.filter(pk=first.pk).update(facts=facts, facts_hash=normalize.fact_hash(facts))
        evaluate_scope(scope.pk)
        for cluster in fleet.clusters:
            cluster.refresh_from_db()
        return fleet

    return make


@pytest.fixture
def fleet(make_fleet: Callable[..., Fleet]) -> Fleet:
    return make_fleet(8)


@pytest.fixture
def sample(
    make_fleet: Any, admin_user: Any, analyst: Any, viewer: Any, django_capture_on_commit_callbacks: Any
) -> dict[str, dict[str, Any]]:
    """URL kwargs for every pattern, pointing at real objects."""
    from posture.exports.jobs import request_export  # here: the other web tests do not need the task

    fleet = make_fleet(3)
    with django_capture_on_commit_callbacks(execute=True):  # the task builds the file on commit
        export = request_export(user=analyst, kind="scorecards", fmt="csv", filters=ExportFilters())
    requester = make_user("rita-requester", ANALYST)
    later = timezone.now() + dt.timedelta(days=30)
    attestation = governance.attestation_create(user=requester, control="ARC-NP-02", subscription_id=SUB, statement="ok", expires_at=later)
    exception = governance.exception_request(
        user=requester, control="ARC-PL-01", subscription_id=SUB, justification="firewall", owner="ops", expires_at=later
    )
    other = make_user("otto-other", VIEWER)
    evidence = QueryEvidence.objects.get(batch__scan=fleet.scan)
    scan = {"scan_id": fleet.scan.pk}
    rule = rule_create(
        user=analyst,
        name="High regressions",
        kind=AlertRule.Kind.CONTROL_REGRESSION,
        params={"min_severity": "high"},
        addresses=["soc@example.test"],
    )
    notification = sample_notification(rule, viewer, scan=fleet.scan)
    unsubscribe = Notification(rule=rule, kind=rule.kind, recipient="soc@example.test")
    return {
        "cluster-detail": {"pk": fleet.clusters[0].pk},
        "benchmark-detail": {"framework": "cis-k8s"},
        "benchmark-section": {"framework": "cis-k8s", "section": "5.3.1"},
        "control-detail": {"control_id": "ARC-PL-01"},
        "control-remediation": {"control_id": "ARC-PL-01"},
        "scan-detail": scan,
        "scan-progress": scan,
        "evidence-download": {"pk": evidence.pk},
        "export-progress": {"export_id": export.pk},
        "export-download": {"export_id": export.pk},
        "scope-edit": {"name": fleet.scope.name},
        "scan-start": {"name": fleet.scope.name},
        "attestation-detail": {"pk": attestation.pk},
        "attestation-revoke": {"pk": attestation.pk},
        "exception-detail": {"pk": exception.pk},
        "exception-approve": {"pk": exception.pk},
        "exception-reject": {"pk": exception.pk},
        "exception-revoke": {"pk": exception.pk},
        "user-role": {"pk": other.pk},
        "user-set-active": {"pk": other.pk},
        **{name: {"pk": rule.pk} for name in ALERT_RULE_PAGES},
        "notification-detail": {"pk": notification.pk},
        "notification-resend": {"pk": notification.pk},
        "unsubscribe": {"token": unsubscribe_token(unsubscribe)},
        "token-revoke": {"pk": tokens.issue(viewer, "sample")[0].pk},
    }


ALERT_RULE_PAGES = (
    "alert-rule-detail",
    "alert-rule-edit",
    "alert-rule-enabled",
    "alert-rule-delete",
    "alert-rule-subscription",
    "alert-rule-preview",
)


def sample_notification(rule: AlertRule | None, user: Any, scan: Scan | None = None, **fields: Any) -> Notification:
    """A notification of `rule` (None: a daily digest) to `user` that the mail server refused, as
    delivery records one; `fields` override any column (user=None: sent to a distribution address)."""
    pk = uuid.uuid4()
    now = timezone.now()
    values = {
        "state": Notification.State.FAILED,
        "attempts": 1,
        "last_error": "The mail server refused the recipient: 550 no such user",
        "recipient": (user.email or f"{user.username}@example.test") if user else "list@example.test",
        "changes": [{"event": 1, "cluster": None, "name": "alpha", "control": "ARC-NP-01", "from": "pass", "to": "fail"}],
        "source": f"scan:{scan.pk if scan else pk}",
        "user": user,
        **fields,
    }
    return Notification.objects.create(
        id=pk,
        rule=rule,
        rule_name=rule.name if rule else "Daily digest",
        kind=rule.kind if rule else "digest",
        scan=scan,
        message_id=message_id(pk),
        next_attempt_at=now,
        created_at=now,
        **values,
    )
