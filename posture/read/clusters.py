"""Clusters: the filtered, sorted list and everything the cluster page shows."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from posture.models import (
    Attestation,
    ChangeEvent,
    Cluster,
    ControlResult,
    QueryEvidence,
    RiskException,
    Scan,
    ScanBatch,
    Scope,
    ScoreHistory,
    Status,
)
from posture.models.inventory import CLUSTER_LIST_COLUMNS
from posture.read.cache import cached

CLUSTER_SORTS = {
    "name": ("name",),
    "score": ("score",),
    "grade": ("grade",),
    "coverage": ("coverage",),
    "failing": ("failing",),
    "last_connectivity_at": ("last_connectivity_at",),
}


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


# The cluster page reads the scope's name and the facts scan's time, and none of the cluster's
# evaluation bookkeeping: the other columns are not fetched (they cost more to turn into Python
# than the query takes to run).
_UNREAD_ON_CLUSTER_PAGE = (
    *(f"scope__{f.name}" for f in Scope._meta.concrete_fields if f.name not in ("id", "name")),
    *(f"facts_scan__{f.name}" for f in Scan._meta.concrete_fields if f.name not in ("id", "created_at")),
    "key",
    "evaluated_inputs",
    "evaluated_refs",
    "statuses",
)


def cluster_get(*, pk: int, latest_scan: bool = True) -> Cluster | None:
    """The cluster, its scope and facts scan, and (with `latest_scan`) the id of the newest
    finished scan of its scope (`latest_scan_id`, for the page's freshness warning): one query."""
    found = Cluster.objects.select_related("scope", "facts_scan").defer(*_UNREAD_ON_CLUSTER_PAGE).filter(pk=pk)
    if latest_scan:
        finished = Scan.objects.filter(scope=OuterRef("scope"), state__in=Scan.FINISHED_STATES).order_by("-created_at")
        found = found.annotate(latest_scan_id=Subquery(finished.values("pk")[:1]))
    # A slice, not first(): first() would sort by name a result of one row.
    return next(iter(found[:1]), None)


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


EVIDENCE_LISTED = ("pk", "name", "requests", "rows", "sha256")


def cluster_evidence(*, cluster: Cluster) -> list[dict[str, Any]]:
    """The raw responses of the batch that collected the cluster's current facts, as rows of
    EVIDENCE_LISTED: the page lists them, the download reads the body. A query runs over slices
    of its batch's subscriptions (`scopes`): only the slice holding this cluster counts."""
    if cluster.facts_scan_id is None:
        return []
    subscription = cluster.subscription_id
    if connection.features.supports_json_field_contains:
        # PostgreSQL matches the subscription lists itself (jsonb @>): one query, and none of
        # the lists (a batch's is 300 ids) is sent over or decoded to be searched in Python.
        evidence = QueryEvidence.objects.filter(
            batch__scan_id=cluster.facts_scan_id, batch__state=ScanBatch.State.DONE, batch__subscriptions__contains=[subscription]
        ).filter(Q(scopes__subscriptions__contains=[subscription]) | ~Q(scopes__has_key="subscriptions"))
        return list(evidence.order_by("name", "pk").values(*EVIDENCE_LISTED))
    # SQLite has no JSON containment: the same matching in Python, in two queries.
    batches = (
        ScanBatch.objects.filter(scan_id=cluster.facts_scan_id, state=ScanBatch.State.DONE).order_by().values_list("pk", "subscriptions")
    )
    ids = [pk for pk, subscriptions in batches if subscription in (subscriptions or [])]
    if not ids:
        return []
    rows = QueryEvidence.objects.filter(batch_id__in=ids).order_by("name", "pk").values(*EVIDENCE_LISTED, "scopes")
    return [row for row in rows if subscription in (row.pop("scopes") or {}).get("subscriptions", [subscription])]
