"""Batched row readers: findings (cluster × control) and scorecards (one row per cluster).

Clusters are read in chunks by name then pk (keyset, so each chunk is one indexed query however
deep), and each chunk's results and the attestations and exceptions they cite are fetched in bulk:
memory stays constant whatever the fleet's size. As of a past time, clusters come in the order of
their names then, described and scored as they were (posture/exports/cluster_history.py): the ids
of the selection are read once in that order, and each chunk's rows by id.

Rows are tuples in the order of the kind's COLUMNS: exact values (text, numbers and None), or the
cells a format writes (`cell`: CSV's neutralised text); `as_dicts` gives a view by column name.

The scan a finding came from is the cluster's `facts_scan`: results record no scan of their own,
and a verdict is the evaluation of the facts that scan collected (re-evaluations after governance
or catalog changes read the same facts). As of a past time it is the scope's last scan finished
by then (posture/exports/history.py `scans_as_of`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.db import connection
from django.db.models import Count, F, QuerySet, TextField
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThanOrEqual
from django.db.models.functions import Cast

from posture.catalog.controls import Control
from posture.exports.cells import canonical_json, format_refs, format_tags, iso, text, timestamp
from posture.exports.cluster_history import described_as_of, ordered_by_name_then
from posture.exports.filters import ExportFilters
from posture.exports.governance_in_force import decisions_as_of
from posture.exports.history import results_as_of, scans_as_of
from posture.models import Attestation, Cluster, ControlResult, RiskException, Status

Progress = Callable[[int, int], None]  # (clusters done, clusters in all)
Cell = Callable[[Any], Any]  # an exact value → what a format writes for it
Row = tuple[Any, ...]
Fuse = Callable[[Row], Row]  # adjacent cells → what the format's writer takes in their place
Key = tuple[str, int]  # a cluster's place in an export's order: (name, pk)
CHUNK_CLUSTERS = 1000  # 2,000 made PostgreSQL scan all results per chunk rather than seek the index
TAILS_KEPT = 5_000  # distinct row tails kept across chunks (~1 KB each), then made afresh
IDENTITY = ("cluster", "arm_id", "subscription_id", "resource_group", "location", "tags")
FINDINGS_COLUMNS = (
    *IDENTITY,
    "control",
    "title",
    "severity",
    "status",
    "reason",
    "detail",
    "evidence",
    "references_printed",
    "references_closer",
    "attestation_id",
    "attested_by",
    "attestation_statement",
    "attestation_expires_at",
    "exception_id",
    "exception_requested_by",
    "exception_approved_by",
    "exception_owner",
    "exception_justification",
    "exception_expires_at",
    "since",
    "scan_id",
)
SCORECARD_COLUMNS = (
    *IDENTITY,
    "score",
    "grade",
    "coverage",
    *(f"count_{status}" for status in Status.values),
    "network_path",
    "connectivity_status",
    "last_connectivity_at",
    "scan_id",
)
CLUSTER_FIELDS = (
    "pk",
    "name",
    "arm_id",
    "subscription_id",
    "resource_group",
    "location",
    "tags",
    "score",
    "grade",
    "coverage",
    "network_path",
    "connectivity_status",
    "last_connectivity_at",
    "facts_scan_id",
    "scope_id",
)
NOT_EVALUATED = "Not evaluated yet"


def exact(value: Any) -> Any:
    """The value as it is: JSON Lines, Excel and OSCAL take rows of exact values."""
    return value


def separate(cells: Row) -> Row:
    """Cells stay one per column (every format but CSV)."""
    return cells


def findings_rows(
    filters: ExportFilters,
    *,
    progress: Progress | None = None,
    cell: Cell = exact,
    fuse: Fuse = separate,
    after: Key | None = None,
    through: Key | None = None,
) -> Iterator[Row]:
    """One row per selected cluster × selected control, controls in catalog order; the status
    filter drops rows. A cluster not yet evaluated gets rows with a blank status.

    Each value goes through `cell` once per cluster (identity), once per control (catalog
    columns) and once per distinct verdict, decision or time (the result's columns), so a
    format's cells (CSV's text) cost little per row. `fuse` turns each such group of cells into
    what the writer takes in its place: CSV's writer joins fields, so its groups come joined
    (a row is then three segments, not 27 fields: the per-row work of a 100,000-row/s export).
    `after` and `through` bound the clusters by their (name, pk), for an export in parts."""
    no_decision = _cells(cell, (None,) * (len(ATTESTATION_COLUMNS) + len(EXCEPTION_COLUMNS)))
    unevaluated = fuse(_cells(cell, ("", "", NOT_EVALUATED, "")))
    never = cell("")
    controls = []
    for control in filters.controls():
        head, refs = fuse(_cells(cell, _control_head(control))), _cells(cell, _control_refs(control))
        refs_undecided = fuse(refs + no_decision)
        controls.append((control.id, head, refs, refs_undecided, fuse(head + unevaluated + refs_undecided + (never,))))
    by_id = {control_id: rest for control_id, *rest in controls}
    ids = list(by_id)
    # As of a past time, the scan a finding came from is its scope's last scan finished by then.
    scans_then = scans_as_of(filters.as_of) if filters.as_of else {}
    evidence: dict[str | None, Any] = {}
    # Everything after the cluster's identity but the scan, by (control, *the result's columns):
    # one lookup a row (and its cells made once per distinct tail).
    tails: dict[tuple[Any, ...], Row] = {}

    def tail_of(key: tuple[Any, ...], attestations: dict[int, Row], exceptions: dict[int, Row]) -> Row:
        head, refs, refs_undecided, _ = by_id[key[0]]
        attestation_id, exception_id, since = key[1:4]
        if attestation_id is None and exception_id is None:
            refs_decisions = refs_undecided
        else:
            attested = attestations.get(attestation_id, no_decision[: len(ATTESTATION_COLUMNS)])
            refs_decisions = fuse(refs + attested + exceptions.get(exception_id, no_decision[len(ATTESTATION_COLUMNS) :]))
        at = cell(iso(timestamp(since))) if since else never
        return fuse(head + fuse(_verdict(key[4:], evidence, cell)) + refs_decisions + (at,))

    for chunk in _cluster_chunks(filters, progress, after, through):
        found = _results([c.pk for c in chunk], ids, filters)
        attestations, exceptions = _governance(found.values(), cell, filters.as_of)
        if len(tails) > TAILS_KEPT:
            tails.clear()
            evidence.clear()
        for cluster in chunk:
            pk, identity = cluster.pk, fuse(_cells(cell, _identity(cluster)))
            scan = (cell(text(scans_then.get(cluster.scope_id) if filters.as_of else cluster.facts_scan_id)),)
            for control_id, _, _, _, unevaluated_tail in controls:
                result = found.get((pk, control_id))
                if result is None:
                    if not filters.status:
                        yield identity + unevaluated_tail + scan
                    continue
                tail = tails.get(key := result[1:])
                if tail is None:
                    tail = tails[key] = tail_of(key, attestations, exceptions)
                yield identity + tail + scan


def scorecard_rows(filters: ExportFilters, *, progress: Progress | None = None, cell: Cell = exact) -> Iterator[Row]:
    """One row per selected cluster: its score, grade, coverage and how many of all its
    controls are in each status (the counts the score was computed from). As of a past time,
    each as it stood then (a cluster with no verdict then was not evaluated yet: no score) and
    the scan its scope's last finished by then, as for findings."""
    scans_then = scans_as_of(filters.as_of) if filters.as_of else {}
    unscored = (None, "", None)
    for chunk in _cluster_chunks(filters, progress):
        counts = _status_counts([c.pk for c in chunk], filters)
        for cluster in chunk:
            tally = counts.get(cluster.pk)
            scored = (cluster.score, cluster.grade, cluster.coverage)
            if filters.as_of is not None and tally is None:
                if filters.status:
                    continue  # no finding then in the status filter's statuses
                scored = unscored
            tally = tally or Counter()
            values = (
                *_identity(cluster),
                *scored,
                *(tally[status] for status in Status.values),
                cluster.network_path,
                cluster.connectivity_status,
                iso(cluster.last_connectivity_at),
                text(scans_then.get(cluster.scope_id) if filters.as_of else cluster.facts_scan_id),
            )
            yield _cells(cell, values)


def _status_counts(cluster_ids: list[int], filters: ExportFilters) -> dict[int, Counter[str]]:
    """Cluster id → how many of its results are in each status. As of a past time, from the
    verdicts then, and only for clusters holding a finding that passes the status filter (now,
    ExportFilters.clusters selects those)."""
    counts: dict[int, Counter[str]] = {}
    if filters.as_of is None:
        tallies = ControlResult.objects.filter(cluster_id__in=cluster_ids).order_by().values_list("cluster_id", "status")
        for cluster_id, status, n in tallies.annotate(n=Count("pk")):
            counts.setdefault(cluster_id, Counter())[status] = n
        return counts
    chosen = {c.id for c in filters.controls()}
    passing = set()
    for (cluster_id, control), verdict in results_as_of(cluster_ids, filters.as_of, fields=("status",)).items():
        counts.setdefault(cluster_id, Counter())[verdict["status"]] += 1
        if control in chosen and verdict["status"] in filters.status:
            passing.add(cluster_id)
    return {pk: tally for pk, tally in counts.items() if pk in passing} if filters.status else counts


def as_dicts(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Rows as dicts keyed by their columns, for a consumer that reads cells by name."""
    for row in rows:
        yield dict(zip(columns, row, strict=True))


# The verdict's columns last: the key of a distinct verdict is a slice of the row.
RESULT_FIELDS = ("cluster_id", "control", "attestation_id", "exception_id", "since_text", "status", "reason", "detail", "evidence_text")


def _results(cluster_ids: list[int], control_ids: list[str], filters: ExportFilters) -> dict[tuple[int, str], Row]:
    """(cluster id, control) → the verdict as RESULT_FIELDS: the current one, or the one in force
    at filters.as_of rebuilt from the history; only those in the status filter's statuses."""
    if filters.as_of is not None:
        rebuilt = results_as_of(cluster_ids, filters.as_of, control_ids)
        return {
            key: (*key, v["attestation_id"], v["exception_id"], v["since"].isoformat(), v["status"], v["reason"], v["detail"], _json(v))
            for key, v in rebuilt.items()
            if not filters.status or v["status"] in filters.status
        }
    results = ControlResult.objects.filter(cluster_id__in=cluster_ids, control__in=control_ids)
    if filters.status:
        results = results.filter(status__in=filters.status)
    # Evidence and since as the database's text, converted once per distinct value in the chunk.
    results = results.annotate(since_text=Cast("since", TextField()), evidence_text=Cast("evidence", TextField()))
    # Fetched whole by the driver: Django's iteration fetches 100 rows a call, and its per-call
    # work was a tenth of a findings export. The fields need no conversion (ids, text).
    sql, params = results.values_list(*RESULT_FIELDS).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(r[0], r[1]): r for r in cursor.fetchall()}


def _json(verdict: dict[str, Any]) -> str | None:
    return None if verdict["evidence"] is None else json.dumps(verdict["evidence"])


def _cluster_chunks(
    filters: ExportFilters, progress: Progress | None, after: Key | None = None, through: Key | None = None
) -> Iterator[list[Any]]:
    clusters: QuerySet[Cluster] = filters.clusters()
    if filters.as_of is not None:  # in the order of the names then, whole (never in parts)
        yield from past_chunks(clusters, filters.as_of, progress)
        return
    if after is not None:
        clusters = clusters.filter(TupleGreaterThan(Tuple(F("name"), F("pk")), after))
    if through is not None:
        clusters = clusters.filter(TupleLessThanOrEqual(Tuple(F("name"), F("pk")), through))
    total = clusters.count() if progress else 0
    rows = clusters.values_list(*CLUSTER_FIELDS, named=True)
    done = 0
    last: Key | None = None
    while True:
        # (name, pk) > last as one row comparison: PostgreSQL seeks the (name, id) index to it.
        page = rows if last is None else rows.filter(TupleGreaterThan(Tuple(F("name"), F("pk")), last))
        chunk = list(page[:CHUNK_CLUSTERS])
        if not chunk:
            return
        yield chunk
        done += len(chunk)
        if progress:
            progress(done, max(total, done))
        last = chunk[-1].name, chunk[-1].pk


def past_chunks(clusters: QuerySet[Cluster], at: dt.datetime, progress: Progress | None) -> Iterator[list[Any]]:
    """The clusters as described at `at`, in the order of their names then."""
    ids = ordered_by_name_then(clusters, at)
    rows = Cluster.objects.order_by().values_list(*CLUSTER_FIELDS, named=True)
    for start in range(0, len(ids), CHUNK_CLUSTERS):
        part = ids[start : start + CHUNK_CLUSTERS]
        found = {row.pk: row for row in rows.filter(pk__in=part)}
        yield described_as_of([found[pk] for pk in part if pk in found], at)
        if progress:
            progress(min(start + CHUNK_CLUSTERS, len(ids)), len(ids))


# Finding column → field of the attestation or exception a result cites (None when it cites none).
ATTESTATION_COLUMNS = {
    "attestation_id": "pk",
    "attested_by": "attested_by__username",
    "attestation_statement": "statement",
    "attestation_expires_at": "expires_at",
}
EXCEPTION_COLUMNS = {
    "exception_id": "pk",
    "exception_requested_by": "requested_by__username",
    "exception_approved_by": "decided_by__username",
    "exception_owner": "owner",
    "exception_justification": "justification",
    "exception_expires_at": "expires_at",
}


def _governance(results: Any, cell: Cell, at: dt.datetime | None = None) -> tuple[dict[int, Row], dict[int, Row]]:
    """The attestations and exceptions a chunk's results cite, as their columns' cells (as they
    stood at `at` when given): two queries at most, four as of a past time."""
    attestation_ids = {r[2] for r in results if r[2]}
    exception_ids = {r[3] for r in results if r[3]}
    return (
        _decisions("attestation", attestation_ids, ATTESTATION_COLUMNS, cell, at) if attestation_ids else {},
        _decisions("exception", exception_ids, EXCEPTION_COLUMNS, cell, at) if exception_ids else {},
    )


def _decisions(kind: str, ids: set[int], columns: dict[str, str], cell: Cell, at: dt.datetime | None) -> dict[int, Row]:
    fields = tuple(columns.values())
    if at is None:
        model: Any = Attestation if kind == "attestation" else RiskException
        found: Iterable[Sequence[Any]] = model.objects.filter(pk__in=ids).values_list(*fields)
    else:
        found = (tuple(row[name] for name in fields) for row in decisions_as_of(kind, ids, fields, at))
    expires = fields.index("expires_at")
    decisions = {}
    for values in found:
        decisions[values[0]] = _cells(cell, (*values[:expires], iso(values[expires]), *values[expires + 1 :]))
    return decisions


def _cells(cell: Cell, values: Iterable[Any]) -> Row:
    return tuple(map(cell, values))


def _identity(cluster: Any) -> Row:
    return (cluster.name, cluster.arm_id, cluster.subscription_id, cluster.resource_group, cluster.location, format_tags(cluster.tags))


def _control_head(control: Control) -> Row:
    return (control.id, control.title, control.severity)


def _control_refs(control: Control) -> Row:
    return ("; ".join(ref.label() for ref in control.printed), format_refs(control.closer))


def _verdict(key: tuple[Any, ...], evidence: dict[str | None, Any], cell: Cell) -> Row:
    """status, reason, detail and the evidence as canonical JSON (sorted keys, compact)."""
    status, reason, detail, text = key
    if text not in evidence:
        evidence[text] = cell(canonical_json(text))
    return (cell(status), cell(reason), cell(detail), evidence[text])
