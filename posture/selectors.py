"""Read-side queries for the web pages.

Fleet, section and control counts come from FleetSnapshot (computed once per evaluation);
pages never aggregate raw results at request time. Drill-downs to clusters query ControlResult
(indexed on control and status) joined to Cluster, one page at a time. Every function here
issues a fixed number of queries whatever the fleet size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from posture.evaluate.scoring import GRADE_FLOORS, NO_GRADE, SECTION_CONTROLS, grade_for
from posture.models import (
    Attestation,
    ChangeEvent,
    Cluster,
    ControlResult,
    FleetSnapshot,
    GovernanceEvent,
    QueryEvidence,
    RiskException,
    Scan,
    ScanBatch,
    Scope,
    ScoreHistory,
    Status,
)

T = TypeVar("T")
GRADES = tuple(letter for letter, _ in GRADE_FLOORS) + (NO_GRADE,)
# Fail-dominant section status (posture/scoring.py section_status): the statuses that outrank each one.
SECTION_PRECEDENCE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Status.FAIL: ((Status.FAIL,), ()),
    Status.UNKNOWN: ((Status.UNKNOWN,), (Status.FAIL,)),
    Status.EXCEPTED: ((Status.EXCEPTED,), (Status.FAIL, Status.UNKNOWN)),
    Status.PASS: ((Status.PASS, Status.ATTESTED), (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED)),
}
FRESHNESS_CONTROL = "ARC-EV-01"
CLUSTER_LIST_COLUMNS = (
    "pk",
    "name",
    "subscription_id",
    "resource_group",
    "location",
    "tags",
    "scope_id",
    "distribution",
    "infrastructure",
    "connectivity_status",
    "last_connectivity_at",
    "network_path",
    "score",
    "grade",
    "coverage",
    "failing",
    "removed_at",
)
CLUSTER_SORTS = {
    "name": ("name",),
    "score": ("score",),
    "grade": ("grade",),
    "coverage": ("coverage",),
    "failing": ("failing",),
    "last_connectivity_at": ("last_connectivity_at",),
}


# --- fleet snapshots -------------------------------------------------------------------------
@dataclass
class FleetSummary:
    """One or several scopes' latest snapshots, summed (score and coverage weighted by clusters)."""

    snapshots: list[FleetSnapshot] = field(default_factory=list)
    clusters: int = 0
    score: float | None = None
    coverage: float | None = None
    grades: dict[str, int] = field(default_factory=dict)
    controls: dict[str, dict[str, int]] = field(default_factory=dict)
    sections: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    connectivity: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    created_at: dt.datetime | None = None

    @property
    def grade(self) -> str:
        return grade_for(self.score)

    @property
    def exists(self) -> bool:
        return bool(self.snapshots)

    def control_counts(self, control: str) -> dict[str, int]:
        return self.controls.get(control, {})

    def section_counts(self, framework: str, section: str) -> dict[str, int]:
        return self.sections.get(framework, {}).get(section, {})


def cached(key: str, version: str, compute: Callable[[], T], timeout: int = 24 * 3600) -> T:
    """`compute()` once per evaluation: results change only when an evaluation runs, so its
    output (counts, drift, filter options) is cached under the fleet's version."""
    if not version:
        return compute()
    full = "selectors:" + hashlib.sha256(f"{version}|{key}".encode()).hexdigest()
    value = caches["pages"].get(full)
    if value is None:
        value = compute()
        caches["pages"].set(full, value, timeout)
    return value


def _weighted(values: Iterable[tuple[float | None, int]]) -> float | None:
    total = weight = 0.0
    for value, n in values:
        if value is not None and n:
            total += value * n
            weight += n
    return round(total / weight, 1) if weight else None


def summarize(snapshots: list[FleetSnapshot]) -> FleetSummary:
    summary = FleetSummary(snapshots=snapshots)
    if not snapshots:
        return summary
    grades: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    connectivity: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    controls: dict[str, Counter[str]] = {}
    sections: dict[str, dict[str, Counter[str]]] = {}
    for snap in snapshots:
        summary.clusters += snap.clusters
        grades.update(snap.grades)
        paths.update(snap.paths)
        connectivity.update(snap.connectivity)
        changes.update({k: v for k, v in snap.changes.items() if isinstance(v, int)})
        for control, counts in snap.controls.items():
            controls.setdefault(control, Counter()).update(counts)
        for framework, secs in snap.sections.items():
            for section, counts in secs.items():
                sections.setdefault(framework, {}).setdefault(section, Counter()).update(counts)
    summary.score = _weighted((s.score, s.clusters) for s in snapshots)
    summary.coverage = _weighted((s.coverage, s.clusters) for s in snapshots)
    summary.grades = {g: grades.get(g, 0) for g in GRADES}
    summary.paths = dict(paths.most_common())
    summary.connectivity = dict(connectivity.most_common())
    summary.changes = dict(changes)
    summary.controls = {c: dict(v) for c, v in controls.items()}
    summary.sections = {f: {s: dict(c) for s, c in secs.items()} for f, secs in sections.items()}
    summary.created_at = max(s.created_at for s in snapshots)
    return summary


@dataclass
class FleetState:
    scopes: list[Scope]
    selected: Scope | None
    latest: FleetSummary
    previous: FleetSummary
    last_scans: dict[int, Scan]
    has_previous: bool = False

    @property
    def scope_ids(self) -> list[int]:
        return [self.selected.pk] if self.selected else [s.pk for s in self.scopes]

    @property
    def active_scans(self) -> list[Scan]:
        return [s for s in self.last_scans.values() if s.state in Scan.ACTIVE_STATES]

    @property
    def version(self) -> str:
        """Changes with every evaluation of any scope: a cache key for what evaluations write
        (results, counts, drift). Empty before the first evaluation (nothing is cached then)."""
        parts = [
            f"{s.pk}:{s.latest_snapshot_id}:{s.latest_snapshot_at.timestamp()}"  # type: ignore[attr-defined]
            for s in self.scopes
            if s.latest_snapshot_id  # type: ignore[attr-defined]
        ]
        return ";".join(parts)

    @property
    def scope_names(self) -> list[str]:
        return [s.name for s in self.scopes]


def scopes_annotated() -> QuerySet[Scope]:
    """Scopes with the ids of their latest and previous snapshot and of their last scan."""
    snapshots = FleetSnapshot.objects.filter(scope=OuterRef("pk")).order_by("-created_at", "-pk")
    scans = Scan.objects.filter(scope=OuterRef("pk")).order_by("-created_at").values("pk")
    return Scope.objects.annotate(
        latest_snapshot_id=Subquery(snapshots.values("pk")[:1]),
        latest_snapshot_at=Subquery(snapshots.values("created_at")[:1]),
        previous_snapshot_id=Subquery(snapshots.values("pk")[1:2]),
        last_scan_id=Subquery(scans[:1]),
    ).order_by("name")


def fleet_state(*, scope_name: str | None = None, with_scans: bool = False) -> FleetState:
    """The latest (and previous) fleet summary of every scope, or of the one named; 2-3 queries."""
    scopes = list(scopes_annotated())
    selected = next((s for s in scopes if s.name == scope_name), None) if scope_name else None
    chosen = [selected] if selected else scopes
    wanted = {s.latest_snapshot_id for s in chosen} | {s.previous_snapshot_id for s in chosen}  # type: ignore[attr-defined]
    by_id = {s.pk: s for s in FleetSnapshot.objects.filter(pk__in=[pk for pk in wanted if pk])} if any(wanted) else {}
    latest = [by_id[s.latest_snapshot_id] for s in chosen if s.latest_snapshot_id in by_id]  # type: ignore[attr-defined]
    # A scope evaluated only once has no previous snapshot: it counts as unchanged.
    previous = [by_id.get(s.previous_snapshot_id) or by_id[s.latest_snapshot_id] for s in chosen if s.latest_snapshot_id in by_id]  # type: ignore[attr-defined]
    last_scans: dict[int, Scan] = {}
    if with_scans:
        ids = [s.last_scan_id for s in scopes if s.last_scan_id]  # type: ignore[attr-defined]
        if ids:
            last_scans = {scan.scope_id: scan for scan in Scan.objects.filter(pk__in=ids).select_related("scope")}
    has_previous = any(by_id.get(s.previous_snapshot_id) for s in chosen)  # type: ignore[attr-defined]
    return FleetState(scopes, selected, summarize(latest), summarize(previous), last_scans, has_previous)


@dataclass(frozen=True)
class TrendPoint:
    at: dt.datetime
    score: float | None
    coverage: float | None
    clusters: int


def fleet_trend(*, scope_ids: list[int], limit: int = 60) -> list[TrendPoint]:
    """Score and coverage after each evaluation; with several scopes, each point combines the
    latest snapshot of every scope known at that time."""
    if not scope_ids:
        return []
    rows = list(
        FleetSnapshot.objects.filter(scope_id__in=scope_ids)
        .order_by("-created_at", "-pk")
        .values("scope_id", "created_at", "score", "coverage", "clusters")[: limit * len(scope_ids)]
    )
    current: dict[int, dict[str, Any]] = {}
    points = []
    for row in reversed(rows):
        current[row["scope_id"]] = row
        values = list(current.values())
        points.append(
            TrendPoint(
                at=row["created_at"],
                score=_weighted((v["score"], v["clusters"]) for v in values),
                coverage=_weighted((v["coverage"], v["clusters"]) for v in values),
                clusters=sum(v["clusters"] for v in values),
            )
        )
    return points[-limit:]


def recent_changes(*, scope_ids: list[int] | None, version: str, limit: int = 10) -> list[ChangeEvent]:
    def compute() -> list[ChangeEvent]:
        events = ChangeEvent.objects.select_related("cluster").only(
            "control", "from_status", "to_status", "at", "cluster__name", "cluster__id", "cluster__scope_id"
        )
        if scope_ids is not None:
            events = events.filter(cluster__scope_id__in=scope_ids)
        return list(events.order_by("-at", "-pk")[:limit])

    # Change events are written by evaluations only.
    return cached(f"recent-changes:{scope_ids}:{limit}", version, compute)


def stale_clusters(*, scope_ids: list[int] | None, version: str, limit: int = 10) -> list[Cluster]:
    """Offline, expired or long-silent clusters (a failing freshness control), longest silent first."""

    def compute() -> list[Cluster]:
        failing = ControlResult.objects.filter(cluster=OuterRef("pk"), control=FRESHNESS_CONTROL, status=Status.FAIL)
        clusters = (
            Cluster.objects.filter(removed_at__isnull=True)
            .filter(Exists(failing))
            .only("pk", "name", "connectivity_status", "last_connectivity_at", "subscription_id", "resource_group")
        )
        if scope_ids is not None:
            clusters = clusters.filter(scope_id__in=scope_ids)
        return list(clusters.order_by(F("last_connectivity_at").asc(nulls_first=True), "pk")[:limit])

    # The freshness verdicts change only when an evaluation runs.
    return cached(f"stale-clusters:{scope_ids}:{limit}", version, compute)


# --- clusters --------------------------------------------------------------------------------
def cluster_list(
    *,
    q: str = "",
    scope: str = "",
    subscription: str = "",
    resource_group: str = "",
    location: str = "",
    distribution: str = "",
    infrastructure: str = "",
    grade: str = "",
    connectivity: str = "",
    network_path: str = "",
    control: str = "",
    tag: str = "",
    removed: bool = False,
    sort: str = "name",
) -> QuerySet[Cluster]:
    """Clusters matching the list filters, sorted; paginate the result (it is not evaluated)."""
    clusters = Cluster.objects.only(*CLUSTER_LIST_COLUMNS)
    if not removed:
        clusters = clusters.filter(removed_at__isnull=True)
    exact = {
        "scope__name": scope,
        "subscription_id": subscription.strip().lower(),
        "resource_group__iexact": resource_group.strip(),
        "location": location,
        "distribution": distribution,
        "infrastructure": infrastructure,
        "grade": grade,
        "connectivity_status": connectivity,
        "network_path": network_path,
    }
    clusters = clusters.filter(**{k: v for k, v in exact.items() if v})
    if q.strip():
        clusters = clusters.filter(name__icontains=q.strip())
    if control:
        failing = ControlResult.objects.filter(cluster=OuterRef("pk"), control=control, status=Status.FAIL)
        clusters = clusters.filter(Exists(failing))
    if tag.strip():
        clusters = _filter_tag(clusters, tag.strip())
    return clusters.order_by(*_ordering(sort), "pk")


def _ordering(sort: str) -> list[Any]:
    # NULLS LAST only on nullable columns: on NOT NULL ones it would stop PostgreSQL from
    # reading an index on the column backwards for a descending sort.
    descending = sort.startswith("-")
    columns = CLUSTER_SORTS.get(sort.lstrip("-"), ("name",))
    order = []
    for column in columns:
        nullable = Cluster._meta.get_field(column).null
        expression = F(column).desc(nulls_last=nullable or None) if descending else F(column).asc(nulls_last=nullable or None)
        order.append(expression)
    return order


def _filter_tag(clusters: QuerySet[Cluster], tag: str) -> QuerySet[Cluster]:
    # key=value matches that value; a bare key matches any value. The key is a bound parameter.
    key, sep, value = tag.partition("=")
    key = key.strip()
    if not sep:
        return clusters.filter(tags__has_key=key)
    # Cast: a bare KeyTextTransform compares as JSON on SQLite (`= JSON_EXTRACT(%s, '$')`).
    return clusters.alias(_tag_value=Cast(KeyTextTransform(key, "tags"), TextField())).filter(_tag_value=value.strip())


def cluster_filter_options(*, version: str) -> dict[str, list[str]]:
    """Distinct locations, distributions and infrastructures for the filter dropdowns: one query,
    cached until the next evaluation, so the list page never scans the fleet for them."""

    def compute() -> dict[str, list[str]]:
        rows = (
            Cluster.objects.filter(removed_at__isnull=True).order_by().values_list("location", "distribution", "infrastructure").distinct()
        )
        options: dict[str, set[str]] = {"location": set(), "distribution": set(), "infrastructure": set()}
        for location, distribution, infrastructure in rows[:5000]:
            options["location"].add(location)
            options["distribution"].add(distribution)
            options["infrastructure"].add(infrastructure)
        return {name: sorted(v for v in values if v)[:200] for name, values in options.items()}

    return cached("cluster-filter-options", version, compute)


def cluster_count(*, clusters: QuerySet[Cluster], key: str, version: str) -> int:
    """How many clusters a filtered list holds, counted once per evaluation and filter."""
    return cached("cluster-count:" + key, version, clusters.count)


def cluster_get(*, pk: int) -> Cluster | None:
    """The cluster, its scope and facts scan, and the id of the newest finished scan of its scope
    (`latest_scan_id`): one query."""
    finished = Scan.objects.filter(scope=OuterRef("scope"), state__in=Scan.FINISHED_STATES).order_by("-created_at")
    return (
        Cluster.objects.select_related("scope", "facts_scan")
        .annotate(latest_scan_id=Subquery(finished.values("pk")[:1]))
        .filter(pk=pk)
        .first()
    )


def cluster_results(*, cluster: Cluster) -> dict[str, ControlResult]:
    results = ControlResult.objects.filter(cluster=cluster)
    return {r.control: r for r in results}


def cluster_changes(*, cluster: Cluster, limit: int = 50) -> list[ChangeEvent]:
    return list(ChangeEvent.objects.filter(cluster=cluster).order_by("-at", "-pk")[:limit])


def cluster_score_history(*, cluster: Cluster, limit: int = 30) -> list[ScoreHistory]:
    return list(ScoreHistory.objects.filter(cluster=cluster).order_by("-at", "-pk")[:limit])


def _covering(cluster: Cluster) -> Q:
    covering = Q(cluster=cluster) | Q(subscription_id=cluster.subscription_id)
    tag_keys = [str(k) for k in (cluster.tags or {})]
    return covering | Q(tag_key__in=tag_keys) if tag_keys else covering


def cluster_governance(*, cluster: Cluster, limit: int = 50) -> tuple[list[Attestation], list[RiskException]]:
    """Attestations and exceptions whose target covers the cluster (any state)."""
    facts = {"pk": cluster.pk, "subscription_id": cluster.subscription_id, "resource_group": cluster.resource_group, "tags": cluster.tags}

    def covering(model: type[Attestation] | type[RiskException]) -> list[Any]:
        found = [item for item in model.objects.filter(_covering(cluster))[:limit] if item.matches(facts)]
        for item in found:
            if item.cluster_id == cluster.pk:
                item.cluster = cluster  # a target on this cluster names it: no join needed
        return found

    return covering(Attestation), covering(RiskException)


EVIDENCE_LISTED = ("pk", "name", "requests", "rows", "sha256", "scopes")


def cluster_evidence(*, cluster: Cluster) -> list[dict[str, Any]]:
    """The raw responses of the batch that collected the cluster's current facts (two queries),
    as rows of EVIDENCE_LISTED: the page lists them, the download reads the body."""
    if cluster.facts_scan_id is None:
        return []
    batches = ScanBatch.objects.filter(scan_id=cluster.facts_scan_id, state=ScanBatch.State.DONE).values_list("pk", "subscriptions")
    # Subscription lists are JSON; matching them in Python works the same on SQLite and PostgreSQL.
    ids = [pk for pk, subscriptions in batches if cluster.subscription_id in (subscriptions or [])]
    if not ids:
        return []
    evidence = QueryEvidence.objects.filter(batch_id__in=ids).order_by("name", "pk").values(*EVIDENCE_LISTED)
    # A query runs over slices of the batch's subscriptions: keep the slice holding this cluster.
    return [e for e in evidence if cluster.subscription_id in (e["scopes"] or {}).get("subscriptions", [cluster.subscription_id])]


# --- benchmarks and controls -------------------------------------------------------------------
def section_clusters(*, framework: str, section: str, status: str, scope_ids: list[int] | None) -> QuerySet[Cluster]:
    """Clusters whose fail-dominant status for the section is `status`."""
    controls = SECTION_CONTROLS.get((framework, section), [])
    has, outranked_by = SECTION_PRECEDENCE.get(status, SECTION_PRECEDENCE[Status.FAIL])
    results = ControlResult.objects.filter(cluster=OuterRef("pk"), control__in=controls)
    clusters = Cluster.objects.only(*CLUSTER_LIST_COLUMNS).filter(removed_at__isnull=True)
    clusters = clusters.filter(Exists(results.filter(status__in=has)))
    if outranked_by:
        clusters = clusters.exclude(Exists(results.filter(status__in=outranked_by)))
    if scope_ids is not None:
        clusters = clusters.filter(scope_id__in=scope_ids)
    return clusters.order_by("name", "pk")


def control_clusters(*, control: str, status: str, scope_ids: list[int] | None) -> QuerySet[Cluster]:
    """Current clusters whose result for `control` is `status`, by name.

    Driven from Cluster (EXISTS on the unique (cluster, control) index) like the list's failing
    control filter, so a name index on current clusters serves every drill-down.
    """
    results = ControlResult.objects.filter(cluster=OuterRef("pk"), control=control, status=status)
    clusters = Cluster.objects.only(*CLUSTER_LIST_COLUMNS, "arm_id").filter(removed_at__isnull=True).filter(Exists(results))
    if scope_ids is not None:
        clusters = clusters.filter(scope_id__in=scope_ids)
    return clusters.order_by("name", "pk")


def results_for(*, clusters: Iterable[Cluster], control: str) -> dict[int, ControlResult]:
    """The result of one control for each of a page of clusters, with what remediation needs."""
    ids = [c.pk for c in clusters]
    rows = (
        ControlResult.objects.filter(cluster_id__in=ids, control=control)
        .only("pk", "cluster_id", "control", "status", "reason", "detail", "since")
        .annotate(private_link_scope_id=KeyTextTransform("private_link_scope_id", "cluster__facts"))
    )
    return {r.cluster_id: r for r in rows} if ids else {}


def remediation_targets(*, control: str, scope_ids: list[int] | None) -> Iterable[dict[str, Any]]:
    """Every current cluster failing `control`, streamed, each row the command templates' values
    (the keys of web.views.common.cluster_values)."""
    results = ControlResult.objects.filter(control=control, status=Status.FAIL, cluster__removed_at__isnull=True)
    if scope_ids is not None:
        results = results.filter(cluster__scope_id__in=scope_ids)
    rows = (
        results.order_by("cluster__subscription_id", "cluster__name", "cluster_id")
        .values(
            name=F("cluster__name"),
            resource_group=F("cluster__resource_group"),
            subscription_id=F("cluster__subscription_id"),
            location=F("cluster__location"),
            arm_id=F("cluster__arm_id"),  # `id` would clash with the result's own field
            scope_id=KeyTextTransform("private_link_scope_id", "cluster__facts"),
        )
        .iterator(chunk_size=2000)
    )
    return ({**row, "id": row.pop("arm_id")} for row in rows)


# --- scans -----------------------------------------------------------------------------------
def scan_list(*, scope: str = "", state: str = "") -> QuerySet[Scan]:
    scans = Scan.objects.select_related("scope", "requested_by").order_by("-created_at")
    if scope:
        scans = scans.filter(scope__name=scope)
    if state:
        scans = scans.filter(state=state)
    return scans


def scan_get(*, scan_id: Any) -> Scan | None:
    return Scan.objects.select_related("scope", "requested_by").filter(pk=scan_id).first()


def scan_batches(*, scan: Scan, limit: int = 500) -> list[ScanBatch]:
    return list(ScanBatch.objects.filter(scan=scan).order_by("number")[:limit])


def scan_evidence(*, scan: Scan, limit: int = 500) -> list[QueryEvidence]:
    return list(
        QueryEvidence.objects.filter(batch__scan=scan)
        .select_related("batch")
        .defer("raw", "request_ids", "batch__subscriptions")
        .order_by("batch__number", "name")[:limit]
    )


def evidence_get(*, pk: int) -> QueryEvidence | None:
    return QueryEvidence.objects.select_related("batch").filter(pk=pk).first()


# --- governance ------------------------------------------------------------------------------
def attestation_list(*, state: str = "", control: str = "") -> QuerySet[Attestation]:
    now = timezone.now()
    items = Attestation.objects.select_related("cluster", "attested_by", "revoked_by").order_by("-created_at", "-pk")
    if state == "active":
        items = items.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif state == "expired":
        items = items.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "revoked":
        items = items.filter(revoked_at__isnull=False)
    elif state == "expiring":
        items = items.filter(revoked_at__isnull=True, expires_at__gt=now, expires_at__lte=now + expiring_window())
    if control:
        items = items.filter(control=control)
    return items


def exception_list(*, state: str = "", control: str = "") -> QuerySet[RiskException]:
    now = timezone.now()
    items = RiskException.objects.select_related("cluster", "requested_by", "decided_by").order_by("-requested_at", "-pk")
    if state == "active":
        items = items.filter(state=RiskException.State.APPROVED, expires_at__gt=now)
    elif state == "expired":
        items = items.filter(state=RiskException.State.APPROVED, expires_at__lte=now)
    elif state == "expiring":
        items = items.filter(state=RiskException.State.APPROVED, expires_at__gt=now, expires_at__lte=now + expiring_window())
    elif state in RiskException.State.values:
        items = items.filter(state=state)
    if control:
        items = items.filter(control=control)
    return items


def expiring_window() -> dt.timedelta:
    return dt.timedelta(days=settings.ARC_EXPIRING_SOON_DAYS)


def attestation_get(*, pk: int) -> Attestation | None:
    return Attestation.objects.select_related("cluster", "attested_by", "revoked_by").filter(pk=pk).first()


def exception_get(*, pk: int) -> RiskException | None:
    return RiskException.objects.select_related("cluster", "requested_by", "decided_by").filter(pk=pk).first()


def governance_history(*, kind: str, object_id: int) -> list[GovernanceEvent]:
    return list(GovernanceEvent.objects.filter(kind=kind, object_id=object_id).select_related("actor").order_by("at", "pk"))


def covered_results(*, field_name: str, object_id: int, limit: int = 100) -> QuerySet[ControlResult]:
    """Results an attestation (`attestation`) or exception (`exception`) currently changes."""
    return (
        ControlResult.objects.filter(**{f"{field_name}_id": object_id})
        .select_related("cluster")
        .only("pk", "control", "status", "raw_status", "cluster__id", "cluster__name")
        .order_by("cluster__name")[:limit]
    )
