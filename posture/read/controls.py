"""Benchmarks and controls: the clusters behind a section's or a control's count, the results
of a page of them, and every cluster a remediation script fixes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.fields.json import KeyTextTransform

from posture.evaluate.scoring import SECTION_CONTROLS
from posture.models import Cluster, ControlResult, Status
from posture.models.inventory import CLUSTER_LIST_COLUMNS

# Fail-dominant section status (posture/evaluate/scoring.py section_status): the statuses that outrank each one.
SECTION_PRECEDENCE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Status.FAIL: ((Status.FAIL,), ()),
    Status.UNKNOWN: ((Status.UNKNOWN,), (Status.FAIL,)),
    Status.EXCEPTED: ((Status.EXCEPTED,), (Status.FAIL, Status.UNKNOWN)),
    Status.PASS: ((Status.PASS, Status.ATTESTED), (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED)),
}


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
    (the keys of posture.remediation.commands.cluster_values)."""
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
