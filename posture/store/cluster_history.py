"""The cluster history: the row a scan or an evaluation rewrites, kept as a ClusterHistory row when
its description or score really changes (a rename, new tags, a lost connection, a new grade),
never for a new contact time alone. Written in the transaction of the write it records, before it,
from the rows read locked (as the write would lock them): a scan batch and an evaluation rewriting
the same cluster at once take turns, so the second records the row the first wrote, not the one
both read before."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from posture.models import Cluster, ClusterHistory
from posture.models.inventory import CLUSTER_HISTORY_CHANGES, CLUSTER_HISTORY_FIELDS
from posture.store import bulk

COLUMNS = ("cluster_id", "scan_id", "replaced_at", *CLUSTER_HISTORY_FIELDS)
CHUNK = 2000


def record_replaced(written: Iterable[dict[str, Any]], *, by: str, scan_id: uuid.UUID | None, now: dt.datetime) -> int:
    """Before `written` rewrites clusters (rows keyed by `by`, "key" or "id", holding the fields
    they set): store each row it replaces whose described or scored fields change. Returns how
    many were stored. Call it inside the write's transaction: the rows stay locked until it ends."""
    new = {row[by]: row for row in written}
    lookup = "key" if by == "key" else "pk"
    keys = sorted(new) if by == "id" else list(new)  # ids in order: the chunks too lock in pk order
    # FOR NO KEY UPDATE, in pk order (so two writers cannot deadlock on one chunk): the lock the
    # rewrite takes, which inserts of rows referring to the clusters do not wait for.
    clusters = Cluster.objects.select_for_update(no_key=True).order_by("pk")
    replaced = []
    for start in range(0, len(keys), CHUNK):
        for old in clusters.filter(**{f"{lookup}__in": keys[start : start + CHUNK]}).values("key", "pk", *CLUSTER_HISTORY_FIELDS):
            key, pk = old.pop("key"), old.pop("pk")
            row = new[key if by == "key" else pk]
            if not old["grade"] and "grade" in row:
                continue  # a first score: "not evaluated yet" is told by the verdict history (no verdict then)
            if any(name in row and row[name] != old[name] for name in CLUSTER_HISTORY_CHANGES):
                replaced.append({"cluster_id": pk, "scan_id": scan_id, "replaced_at": now, **old})
    bulk.insert(ClusterHistory, COLUMNS, replaced)
    return len(replaced)
