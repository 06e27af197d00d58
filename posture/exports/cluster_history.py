"""Clusters as they were described and scored at a past time, rebuilt from ClusterHistory (the rows
scans and evaluations replaced, posture/store/cluster_history.py).

As of T, a cluster's description (name, ARM id, location, tags, kind, distribution,
infrastructure, connectivity status, network path) and its score, grade and coverage are those of
the first ClusterHistory row replaced after T, or else the current row's.

The contact time (`last_connectivity_at`) changes with nearly every scan and is not recorded on
its own: a row holds the one stored by its facts scan (`facts_scan_id`). It stood at T only if
that scan had finished by T; otherwise a later scan rewrote it before anything recorded changed,
and what stood at T is not kept: the contact time and facts scan are then blank (None), never
today's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from posture.exports.history import first_replaced_after
from posture.models import Cluster, ClusterHistory, Scan
from posture.models.inventory import CLUSTER_HISTORY_FIELDS


def described_as_of(clusters: Sequence[Any], at: dt.datetime) -> list[Any]:
    """`clusters` (named tuples with `pk` and any of CLUSTER_HISTORY_FIELDS, as
    posture/exports/rows.py reads them) with those fields as they stood at `at`. Two queries."""
    if not clusters:
        return []
    names = [name for name in CLUSTER_HISTORY_FIELDS if name in clusters[0]._fields]
    replaced = ClusterHistory.objects.filter(cluster_id__in=[c.pk for c in clusters])
    first = first_replaced_after(replaced, at, ("cluster_id",), names)
    then = [c._replace(**dict(zip(names, first[c.pk], strict=True))) if c.pk in first else c for c in clusters]
    if "facts_scan_id" not in names:
        return then
    stood = set(Scan.objects.filter(pk__in={c.facts_scan_id for c in then}, finished_at__lte=at).values_list("pk", flat=True))
    unknown = {"facts_scan_id": None, "last_connectivity_at": None}
    return [c if c.facts_scan_id in stood else c._replace(**{k: v for k, v in unknown.items() if k in names}) for c in then]


def ordered_by_name_then(clusters: QuerySet[Cluster], at: dt.datetime) -> list[int]:
    """The ids of `clusters` by their name at `at`, then id: the order of an export taken then.
    One query; the ids of the whole selection are held (a few MB at 100,000 clusters)."""
    then = ClusterHistory.objects.filter(cluster=OuterRef("pk"), replaced_at__gt=at).order_by("replaced_at").values("name")[:1]
    named = clusters.annotate(name_then=Coalesce(Subquery(then), F("name")))
    return list(named.order_by("name_then", "pk").values_list("pk", flat=True))
