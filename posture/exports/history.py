"""The posture as it stood at a past time, rebuilt from stored history.

What is kept:

- every time the evaluation rewrites a result row (any of status, raw status, reason, detail,
  evidence, attestation, exception) it stores the row it replaced as a `VerdictHistory`
  (posture/store/results.py, in the same bulk write, from the row it already read for the diff);
- every time a scan rewrites a cluster's description (name, ARM id, location, tags, kind,
  distribution, infrastructure, connectivity status, network path) or an evaluation its score,
  grade or coverage, the row it replaced is stored as a `ClusterHistory`
  (posture/store/cluster_history.py, in the same transaction), read back by
  posture/exports/cluster_history.py;
- every change of an attestation or exception (create, change, approve, reject, revoke) records
  the whole row as a `GovernanceEvent` (posture/governance.py);
- each cluster records when it was first seen and when it was removed.

So, as of a time T:

- the verdict in force is the first one replaced after T, or else the current row if it was
  written by T; a verdict first written after T (a cluster evaluated later) is absent;
- a cluster's description and score are those of its first ClusterHistory row replaced after T,
  or else the current ones; a cluster with no verdict at T was not evaluated yet (no score);
- a cluster existed if it was first seen by T and not removed by then;
- the scan the facts came from is the scope's last scan finished by T (`scans_as_of`);
- the attestations and exceptions a verdict cites, and those in force, are as they stood at T:
  one changed since is read as its last GovernanceEvent by T recorded it
  (posture/exports/governance_in_force.py, `decisions_as_of` for the findings' citations);
- the fleet's aggregates (totals per control and section, grades) are those of each scope's
  fleet snapshot in force, the latest written by T.

What cannot be rebuilt:

- anything before the history begins (`history_begins`): before a scope's first finished
  evaluation there was no posture, and before the history migrations were applied (the last of
  `*_history`: 0008 for verdicts, 0009 for descriptions and scores) not all of it was recorded;
  `check_as_of` refuses such dates;
- a cluster removed and later seen again keeps only its latest first-seen and removal times, so
  it counts as present during the gap;
- the last contact time (`last_connectivity_at`) changes with nearly every scan and is not
  recorded alone (that would be a row per connected cluster per scan): it is exact when the row
  holding it had been stored by a scan finished by T, else blank, never today's;
- the scope a cluster belongs to is read as it is now (so are the scope filter and the scan of
  its findings); export filters on the description (name, location, tags, grade...) are refused
  with an as-of date rather than select by today's values (posture/exports/filters.py);
- an attestation or exception changed since T with no GovernanceEvent by T (written before
  its changes were recorded) is read as it is now.

The cost: one history row per rewritten result and one per cluster whose description or score
changes, only when they change (a rescan of an unchanged fleet writes none, nor one where only
contact times moved), inserted with the rows they replace; one index each, (cluster, control,
time) and (cluster, time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Max, Min, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from posture.exports.errors import ExportError
from posture.models import Cluster, ControlResult, FleetSnapshot, Scan, Scope, VerdictHistory

CHUNK_CLUSTERS = 2000
VERDICT_FIELDS = ("status", "raw_status", "reason", "detail", "evidence", "attestation_id", "exception_id", "since")
# posture/migrations/0008_history.py (verdicts) and 0009_cluster_history.py (descriptions, scores)
HISTORY_MIGRATION_SUFFIX = "_history"


def history_begins(scope_ids: Iterable[int] | None = None) -> dt.datetime | None:
    """From when the posture of every one of these scopes (all scopes: None) can be rebuilt:
    the latest of their first finished evaluations, and not before the history was recorded.
    None when none of them has finished an evaluation."""
    begins = _scope_beginnings(scope_ids)
    return max(begins.values()) if begins else None


def check_as_of(at: dt.datetime, scope_ids: Iterable[int] | None = None) -> dt.datetime:
    """`at` (made aware, in UTC) if the posture of those scopes can be rebuilt then; else an
    ExportError saying why."""
    if timezone.is_naive(at):
        at = timezone.make_aware(at, dt.UTC)
    now = timezone.now()
    if at > now:
        raise ExportError(f"As-of {at.isoformat()} is in the future (now is {now.isoformat()}).")
    begins = _scope_beginnings(scope_ids)
    if not begins:
        raise ExportError("No evaluation has finished yet: there is no history to rebuild the posture from.")
    late = sorted((began, name) for name, began in begins.items() if began > at)
    if late:
        said = "; ".join(f"history for scope {name!r} begins at {began.isoformat()}" for began, name in late)
        raise ExportError(f"As-of {at.isoformat()} is before the history begins: {said}.")
    return at


def clusters_as_of(clusters: QuerySet[Cluster], at: dt.datetime) -> QuerySet[Cluster]:
    """Those of `clusters` that existed at `at`. Pass a queryset that still holds removed
    clusters (export filters with removed=True): a cluster removed since was there then."""
    return clusters.filter(first_seen_at__lte=at).filter(Q(removed_at__isnull=True) | Q(removed_at__gt=at))


def results_as_of(
    cluster_ids: Iterable[int], at: dt.datetime, controls: Iterable[str] | None = None, fields: Sequence[str] = VERDICT_FIELDS
) -> dict[tuple[int, str], dict[str, Any]]:
    """The verdict of each (cluster id, control) in force at `at`, as the dict of `fields` of
    VERDICT_FIELDS and `since` (evidence decoded): what the current ControlResult row holds for a
    present-day read. A key with no verdict at `at` is absent. Read in chunks: two queries per
    chunk of clusters."""
    ids = list(cluster_ids)
    wanted = list(controls) if controls is not None else None
    read = (*dict.fromkeys((*fields, "since")),)
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK_CLUSTERS):
        found.update(_chunk_as_of(ids[start : start + CHUNK_CLUSTERS], at, wanted, read))
    return found


def first_replaced_after(history: QuerySet[Any], at: dt.datetime, keys: Sequence[str], fields: Sequence[str]) -> dict[Any, tuple[Any, ...]]:
    """Of `history` (VerdictHistory or ClusterHistory rows), each key's earliest row replaced after
    `at`, as the tuple of its `fields`: what stood at `at` where it has changed since (where it has
    not, the current row is what stood). Keyed by the value of `keys`, a tuple when several. One query."""
    replaced = history.filter(replaced_at__gt=at).order_by(*keys, "replaced_at")
    if connection.vendor == "postgresql":  # the earliest per key, in the database
        replaced = replaced.distinct(*keys)
    width = len(keys)
    first: dict[Any, tuple[Any, ...]] = {}
    for row in replaced.values_list(*keys, *fields):
        first.setdefault(row[0] if width == 1 else row[:width], row[width:])
    return first


def _chunk_as_of(
    ids: list[int], at: dt.datetime, controls: list[str] | None, fields: Sequence[str]
) -> dict[tuple[int, str], dict[str, Any]]:
    current = ControlResult.objects.filter(cluster_id__in=ids, updated_at__lte=at)
    replaced = VerdictHistory.objects.filter(cluster_id__in=ids)
    if controls is not None:
        current, replaced = current.filter(control__in=controls), replaced.filter(control__in=controls)
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for key, values in first_replaced_after(replaced, at, ("cluster_id", "control"), fields).items():
        verdict = dict(zip(fields, values, strict=True))
        if verdict["since"] <= at:  # replaced after `at` but written after it too: not there then
            found[key] = verdict
    for row in current.values("cluster_id", "control", *fields):
        key = (row.pop("cluster_id"), row.pop("control"))
        if key not in found:
            found[key] = row
    return found


def statuses_as_of(cluster_ids: list[int], at: dt.datetime, controls: list[str]) -> dict[tuple[int, str], str]:
    """The status of each (cluster id, control) in force at `at`, as results_as_of finds it, for
    readers that only count: no verdict text or evidence is read, and rows are tuples (a third of
    the time). For one chunk of clusters (up to CHUNK_CLUSTERS): two queries."""
    replaced = VerdictHistory.objects.filter(cluster_id__in=cluster_ids, control__in=controls)
    earliest = first_replaced_after(replaced, at, ("cluster_id", "control"), ("status", "since"))
    found = {key: status for key, (status, since) in earliest.items() if since <= at}
    current = ControlResult.objects.filter(cluster_id__in=cluster_ids, control__in=controls, updated_at__lte=at)
    for cluster_id, control, status in current.values_list("cluster_id", "control", "status"):
        found.setdefault((cluster_id, control), status)
    return found


def snapshots_as_of(scope_ids: Iterable[int], at: dt.datetime) -> list[FleetSnapshot]:
    """Each scope's fleet snapshot in force at `at`: the latest written by then (a scope with
    none by then has none), ordered by scope."""
    latest = FleetSnapshot.objects.filter(scope=OuterRef("pk"), created_at__lte=at).order_by("-created_at", "-pk").values("pk")[:1]
    ids = Scope.objects.filter(pk__in=list(scope_ids)).annotate(then=Subquery(latest)).values_list("then", flat=True)
    return list(FleetSnapshot.objects.filter(pk__in=[pk for pk in ids if pk]).order_by("scope_id"))


def scans_as_of(at: dt.datetime) -> dict[int, Any]:
    """Scope id → its last scan that had stored its facts by `at` (succeeded or partial)."""
    finished = Scan.objects.filter(state__in=(Scan.State.SUCCEEDED, Scan.State.PARTIAL), finished_at__lte=at)
    return dict(finished.order_by("scope_id", "finished_at").values_list("scope_id", "pk"))


def _scope_beginnings(scope_ids: Iterable[int] | None) -> dict[str, dt.datetime]:
    """Scope name -> from when its posture can be rebuilt, for the scopes with a finished evaluation."""
    scopes = Scope.objects.all() if scope_ids is None else Scope.objects.filter(pk__in=list(scope_ids))
    names = dict(scopes.values_list("pk", "name"))
    firsts = FleetSnapshot.objects.filter(scope_id__in=names).values("scope_id").annotate(first=Min("created_at")).order_by()
    recorded = _history_recorded_at()
    return {names[row["scope_id"]]: max(row["first"], recorded) if recorded else row["first"] for row in firsts}


def _history_recorded_at() -> dt.datetime | None:
    """When the history began to be recorded whole (the last of its migrations was applied)."""
    applied = MigrationRecorder.Migration.objects.filter(app="posture", name__endswith=HISTORY_MIGRATION_SUFFIX)
    return applied.aggregate(last=Max("applied"))["last"]
