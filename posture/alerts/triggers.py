"""What a scan or a re-evaluation stored, read back as candidate items for the rules of each kind.

A candidate is the item a notification stores (kind, severity, cluster, name, control, from, to,
and kind-specific keys) plus what rules match on: the limits' keys (rules.covers) and, under
keys starting with "_", what the kind's parameters compare (`accepts`). `item()` strips both.
Nothing here reads Azure: every value comes from rows the evaluation already wrote.

- control_regression and private_link read change events: a standing state records no event, so
  only a transition can alert;
- score_drop reads ScoreHistory, which holds one row per cluster and scan (and per re-evaluation)
  whenever a score changes: the score before is the cluster's previous row. ClusterHistory would
  serve too, but it is kept for exports and has no index by scan; ScoreHistory's (cluster, -at)
  index finds each previous row directly;
- new_failing_cluster reads the failing results of clusters first seen in the scan
  (posture/store/changes.py new_in_scan: first_seen_at at or after the scan's start), which
  record no change events of their own; never in a scope's first scan, where all are new;
- scan_failed reads the scan row as it is closed.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery

from posture.alerts.kinds import KIND_SEVERITY, PRIVATE_LINK_CHANGES, PRIVATE_LINK_CONTROLS, REGRESSED, Kind
from posture.alerts.text import control_severity
from posture.models import AlertRule, ChangeEvent, ControlResult, Scan, ScoreHistory, Status

MATCH_KEYS = ("scope_id", "scope_ids", "subscription_id", "resource_group", "tags")
CLUSTER_VALUES = (
    "cluster_id",
    "cluster__name",
    "cluster__scope_id",
    "cluster__subscription_id",
    "cluster__resource_group",
    "cluster__tags",
)


def item(candidate: dict[str, Any]) -> dict[str, Any]:
    """What a notification stores of `candidate`."""
    return {k: v for k, v in candidate.items() if k not in MATCH_KEYS and not k.startswith("_")}


def _cluster(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": row["cluster_id"],
        "name": row["cluster__name"],
        "scope_id": row["cluster__scope_id"],
        "subscription_id": row["cluster__subscription_id"],
        "resource_group": row["cluster__resource_group"],
        "tags": row["cluster__tags"],
    }


def event_candidates(events: QuerySet[ChangeEvent]) -> dict[str, list[dict[str, Any]]]:
    """control_regression and private_link candidates among `events`: moves into fail or
    unknown from any other status (a move between fail and unknown is a standing failure), and
    of those, ARC-PL-01/02 moving from pass to fail."""
    rows = (
        events.filter(to_status__in=REGRESSED)
        .exclude(from_status__in=REGRESSED)
        .order_by("pk")
        .values("pk", "control", "from_status", "to_status", *CLUSTER_VALUES)
    )
    found: dict[str, list[dict[str, Any]]] = {Kind.CONTROL_REGRESSION: [], Kind.PRIVATE_LINK: []}
    for r in rows:
        base = {"control": r["control"], "severity": control_severity(r["control"]), **_cluster(r)}
        moved = {"event": r["pk"], "from": r["from_status"], "to": r["to_status"]}
        found[Kind.CONTROL_REGRESSION].append({"kind": Kind.CONTROL_REGRESSION, **base, **moved})
        change = PRIVATE_LINK_CONTROLS.get(r["control"])
        if change and r["from_status"] == Status.PASS and r["to_status"] == Status.FAIL:
            found[Kind.PRIVATE_LINK].append(
                {"kind": Kind.PRIVATE_LINK, **base, **moved, "change": PRIVATE_LINK_CHANGES[change], "_change": change}
            )
    return found


def score_candidates(history: QuerySet[ScoreHistory]) -> list[dict[str, Any]]:
    """score_drop candidates: rows of `history` whose score is lower than the cluster's previous
    one. A first score (a new cluster) and a score that is gone (no control evaluable) compare
    with nothing and are left out."""
    previous = (
        ScoreHistory.objects.filter(cluster_id=OuterRef("cluster_id"), at__lt=OuterRef("at")).order_by("-at", "-pk").values("score")[:1]
    )
    rows = (
        history.annotate(before=Subquery(previous))
        .filter(score__isnull=False, before__isnull=False, before__gt=F("score"))
        .order_by("cluster_id")
        .values("score", "before", *CLUSTER_VALUES)
    )
    return [
        {
            "kind": Kind.SCORE_DROP,
            "severity": KIND_SEVERITY[Kind.SCORE_DROP],
            "control": "",
            **_cluster(r),
            "from": points(r["before"]),
            "to": points(r["score"]),
            "_before": r["before"],
            "_after": r["score"],
        }
        for r in rows
    ]


def points(score: float) -> str:
    return f"{score:.1f}".removesuffix(".0")


def new_cluster_candidates(scan: Scan) -> list[dict[str, Any]]:
    """new_failing_cluster candidates: each failing control of a cluster first seen in `scan`.
    A scope's first scan that stored clusters finds every cluster new: that is the scope's
    inventory being taken, not clusters appearing, and alerts on none."""
    if scan.started_at is None:
        return []
    stored_before = Scan.objects.filter(
        scope_id=scan.scope_id, state__in=(Scan.State.SUCCEEDED, Scan.State.PARTIAL), created_at__lt=scan.created_at
    )
    if not stored_before.exists():
        return []
    rows = (
        ControlResult.objects.filter(
            status=Status.FAIL,
            cluster__scope_id=scan.scope_id,
            cluster__last_seen_scan=scan,  # served by the (scope, last_seen_scan) index
            cluster__first_seen_at__gte=scan.started_at,
            cluster__removed_at__isnull=True,
        )
        .order_by("cluster_id", "control")
        .values("control", *CLUSTER_VALUES)
    )
    return [
        {
            "kind": Kind.NEW_FAILING_CLUSTER,
            "control": r["control"],
            "severity": control_severity(r["control"]),
            **_cluster(r),
            "from": "new",
            "to": Status.FAIL,
        }
        for r in rows
    ]


def scan_candidates_of_state(scan: Scan) -> list[dict[str, Any]]:
    """The scan_failed candidate: the closed scan itself, named by its scope (ours, not Azure's)."""
    if scan.state not in Scan.FINISHED_STATES:
        return []
    return [
        {
            "kind": Kind.SCAN_FAILED,
            "severity": KIND_SEVERITY[Kind.SCAN_FAILED],
            "cluster": None,
            "name": scan.scope.name,
            "control": "",
            "from": "running",
            "to": scan.state,
            "scan": str(scan.pk),
            "throttled_minutes": round(scan.quota_wait_seconds / 60, 1),
            # Azure's words may be in it: escaped in HTML, one line in text, never in a header.
            "error": scan.error[:500],
            "scope_id": scan.scope_id,
            "_state": scan.state,
            "_wait": scan.quota_wait_seconds,
        }
    ]


def scan_candidates(scan: Scan, kinds: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Candidates of each of `kinds` in the closed `scan`."""
    found: dict[str, list[dict[str, Any]]] = {}
    if kinds & {Kind.CONTROL_REGRESSION, Kind.PRIVATE_LINK}:
        found.update(event_candidates(ChangeEvent.objects.filter(scan=scan)))
    if Kind.SCORE_DROP in kinds:
        found[Kind.SCORE_DROP] = score_candidates(ScoreHistory.objects.filter(scan=scan))
    if Kind.NEW_FAILING_CLUSTER in kinds:
        found[Kind.NEW_FAILING_CLUSTER] = new_cluster_candidates(scan)
    if Kind.SCAN_FAILED in kinds:
        found[Kind.SCAN_FAILED] = scan_candidates_of_state(scan)
    return found


def accepts(rule: AlertRule, candidate: dict[str, Any]) -> bool:
    """Whether `candidate` meets the kind's parameters of `rule` (the limits are rules.covers')."""
    params = rule.params
    if rule.kind == Kind.SCORE_DROP:
        before, after = candidate["_before"], candidate["_after"]
        dropped = params.get("drop") is not None and before - after >= params["drop"] - 1e-9
        fell = params.get("below") is not None and after < params["below"] <= before
        return dropped or fell
    if rule.kind == Kind.PRIVATE_LINK:
        return candidate["_change"] in params.get("changes", PRIVATE_LINK_CHANGES)
    if rule.kind == Kind.SCAN_FAILED:
        minutes = params.get("throttled_minutes")
        failed = params.get("failed", True) and candidate["_state"] == Scan.State.FAILED
        return failed or (minutes is not None and candidate["_wait"] >= minutes * 60)
    return True
