"""Storing an evaluation run's output: result rows (first results streamed in with COPY, changed
ones upserted with their change events), each cluster's score columns and score history.

A chunk's writes run on a second database connection where they can (`Writer`), so PostgreSQL
stores one chunk while Python evaluates the next.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import connection, connections, transaction

from posture.evaluate.scoring import ClusterScore
from posture.evaluate.tally import CONTROL_IDS
from posture.evaluate.verdict import Verdict
from posture.models import ChangeEvent, Cluster, ControlResult, Scan, ScoreHistory, VerdictHistory
from posture.store import bulk, changes, cluster_history

RESULT_FIELDS = ("status", "raw_status", "reason", "detail", "evidence", "attestation_id", "exception_id")
RESULT_COLUMNS = ("cluster_id", "control", *RESULT_FIELDS, "since", "updated_at")
HISTORY_COLUMNS = ("cluster_id", "control", *RESULT_FIELDS, "since", "scan_id", "replaced_at")
NULL = "\\N"


class WriteCounts(Protocol):
    """What a run counts of its writes (the run's own stats)."""

    clusters_changed: int
    results_written: int
    change_events: int


@dataclass
class Entry:
    """One evaluated cluster whose results are to be stored."""

    row: dict[str, Any]
    verdicts: dict[str, Verdict]
    score: ClusterScore
    digest: str
    inputs: str
    refs: str
    codes: str
    lines: list[str]


def result_line(control: str, v: Verdict) -> str:
    """A verdict as the text of its database row (COPY format, from `control` to `exception_id`).
    The same text is hashed for the results digest, so it is built once per verdict."""
    attestation = NULL if v.attestation_id is None else str(v.attestation_id)
    exception = NULL if v.exception_id is None else str(v.exception_id)
    return "\t".join(
        (
            control,
            v.status,
            v.raw_status,
            v.reason,
            v.detail.translate(bulk.ESCAPES),
            v.evidence_json.translate(bulk.ESCAPES),
            attestation,
            exception,
        )
    )


def digest_lines(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class Writer:
    """Runs a run's writes on a second database connection, one chunk behind the checks, so
    PostgreSQL stores chunk N while Python evaluates chunk N+1: both cores busy instead of one.
    Writes stay inline where a second connection could not see the caller's data (inside a
    transaction, or on SQLite)."""

    def __init__(self) -> None:
        parallel = connection.vendor == "postgresql" and not connection.in_atomic_block
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluation-writer") if parallel else None
        self.pending: Future[None] | None = None

    def submit(self, write: Callable[..., None], *args: Any) -> None:
        if self.pool is None:
            write(*args)
            return
        self.wait()
        self.pending = self.pool.submit(write, *args)

    def wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()  # re-raises a failed write here

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self.pool is not None:
                self.pool.submit(connections.close_all).result()  # runs in, so closes, the writer's thread
                self.pool.shutdown()


# Publishes a chunk's status changes to the change feed, last in the chunk's transaction
# (posture/feed/publish.py publish_moves; passed in, as the feed sits above this layer).
Publish = Callable[[list[dict[str, Any]], Scan | None, dt.datetime], None]


def store_chunk(
    refreshed: list[dict[str, Any]],
    fresh: list[Entry],
    changed: list[Entry],
    scan: Scan | None,
    now: dt.datetime,
    stats: WriteCounts,
    publish: Publish,
) -> None:
    """One chunk's writes: `refreshed` clusters kept their verdicts (only what they were evaluated
    on is updated), `fresh` ones get their first results, `changed` ones a diff."""
    if refreshed:
        with transaction.atomic():
            bulk.relax_durability()
            bulk.update(Cluster, "id", ("evaluated_inputs", "evaluated_refs", "statuses"), refreshed)
    if fresh:
        store_fresh(fresh, scan, now, stats, publish)
    if changed:
        store_changed(changed, scan, now, stats, publish)


def store_fresh(entries: list[Entry], scan: Scan | None, now: dt.datetime, stats: WriteCounts, publish: Publish) -> None:
    """First results of clusters never evaluated: streamed straight in, no diff, no conflicts."""
    if not bulk.copy_supported() or ControlResult.objects.filter(cluster_id__in=[e.row["pk"] for e in entries]).exists():
        store_changed(entries, scan, now, stats, publish)
        return
    tail = f"{now.isoformat()}\t{now.isoformat()}"
    with transaction.atomic():
        bulk.relax_durability()
        bulk.copy_lines(ControlResult, RESULT_COLUMNS, (f"{e.row['pk']}\t{line}\t{tail}" for e in entries for line in e.lines))
        store_scores(entries, scan, now)
    stats.clusters_changed += len(entries)
    stats.results_written += len(entries) * len(CONTROL_IDS)


def store_scores(entries: list[Entry], scan: Scan | None, now: dt.datetime) -> None:
    scan_id = scan.pk if scan else None
    history = [
        {
            "cluster_id": e.row["pk"],
            "scan_id": scan_id,
            "at": now,
            "score": e.score.score,
            "grade": e.score.grade,
            "coverage": e.score.coverage,
        }
        for e in entries
        if (e.score.score, e.score.grade, e.score.coverage) != (e.row["score"], e.row["grade"], e.row["coverage"])
    ]
    clusters = [
        {
            "id": e.row["pk"],
            "score": e.score.score,
            "grade": e.score.grade,
            "coverage": e.score.coverage,
            "failing": e.score.failing,
            "results_hash": e.digest,
            "evaluated_inputs": e.inputs,
            "evaluated_refs": e.refs,
            "statuses": e.codes,
            "evaluated_at": now,
        }
        for e in entries
    ]
    # A first score replaces none: a cluster with no verdict at a time had no score then.
    rescored = {h["cluster_id"] for h in history} & {e.row["pk"] for e in entries if e.row["grade"]}
    if rescored:
        cluster_history.record_replaced((c for c in clusters if c["id"] in rescored), by="id", scan_id=scan_id, now=now)
    if scan_id is not None and history:  # one point per cluster and scan, however often it was scored
        earlier = dict(
            ScoreHistory.objects.filter(scan_id=scan_id, cluster_id__in=[h["cluster_id"] for h in history]).values_list("cluster_id", "pk")
        )
        again = [{"id": earlier[h["cluster_id"]], **h} for h in history if h["cluster_id"] in earlier]
        bulk.update(ScoreHistory, "id", ("at", "score", "grade", "coverage"), again)
        history = [h for h in history if h["cluster_id"] not in earlier]
    bulk.insert(ScoreHistory, ("cluster_id", "scan_id", "at", "score", "grade", "coverage"), history)
    bulk.update(
        Cluster,
        "id",
        ("score", "grade", "coverage", "failing", "results_hash", "evaluated_inputs", "evaluated_refs", "statuses", "evaluated_at"),
        clusters,
    )


def store_changed(entries: list[Entry], scan: Scan | None, now: dt.datetime, stats: WriteCounts, publish: Publish) -> None:
    ids = [e.row["pk"] for e in entries]
    existing = {
        (r["cluster_id"], r["control"]): r
        for r in ControlResult.objects.filter(cluster_id__in=ids).values("cluster_id", "control", "since", *RESULT_FIELDS)
    }
    scan_id = scan.pk if scan else None
    # A scan evaluates each batch early and then the whole scope: a status moved twice within one
    # scan is one change, and a cluster new in the scan had no status to change from.
    in_scan = changes.events_of_scan(scan, ids)
    new_in_scan = changes.new_in_scan(scan, ids)
    results, events, retargeted, dropped, replaced, moves = [], [], [], [], [], []
    for entry in entries:
        row = entry.row
        for control, verdict in entry.verdicts.items():
            new = {
                "status": verdict.status,
                "raw_status": verdict.raw_status,
                "reason": verdict.reason,
                "detail": verdict.detail,
                "evidence": verdict.evidence,
                "attestation_id": verdict.attestation_id,
                "exception_id": verdict.exception_id,
            }
            old = existing.pop((row["pk"], control), None)
            if old is not None and all(old[k] == new[k] for k in RESULT_FIELDS):
                continue
            new["evidence"] = bulk.RawJson(verdict.evidence_json)
            if old is not None:  # the old row, already read for the diff, is the verdict's history
                replaced.append({**old, "scan_id": scan_id, "replaced_at": now})
            moved = old is not None and old["status"] != verdict.status
            if moved and row["pk"] not in new_in_scan:  # each status change, for the feed
                moves.append({"cluster_id": row["pk"], "control": control, "from_status": old["status"], "to_status": verdict.status})
            earlier = in_scan.get((row["pk"], control)) if moved else None
            if earlier is not None:
                if earlier["from_status"] == verdict.status:
                    dropped.append(earlier["pk"])  # back where the scan found it
                else:
                    retargeted.append({"id": earlier["pk"], "to_status": verdict.status, "at": now})
            elif moved and row["pk"] not in new_in_scan:
                events.append(
                    {
                        "cluster_id": row["pk"],
                        "control": control,
                        "from_status": old["status"],
                        "to_status": verdict.status,
                        "scan_id": scan_id,
                        "at": now,
                    }
                )
            since = old["since"] if old is not None and not moved else now
            results.append({"cluster_id": row["pk"], "control": control, "since": since, "updated_at": now, **new})
    retired = list(existing)  # controls no longer in the catalog
    replaced += [{**existing[key], "scan_id": scan_id, "replaced_at": now} for key in retired]
    with transaction.atomic():
        bulk.relax_durability()
        bulk.upsert(
            ControlResult,
            RESULT_COLUMNS,
            results,
            conflict=("cluster_id", "control"),
            update=(*RESULT_FIELDS, "since", "updated_at"),
        )
        bulk.insert(ChangeEvent, ("cluster_id", "control", "from_status", "to_status", "scan_id", "at"), events)
        bulk.update(ChangeEvent, "id", ("to_status", "at"), retargeted)
        bulk.insert(VerdictHistory, HISTORY_COLUMNS, replaced)
        ChangeEvent.objects.filter(pk__in=dropped).delete()
        store_scores(entries, scan, now)
        for cluster_id, control in retired:
            ControlResult.objects.filter(cluster_id=cluster_id, control=control).delete()
        publish(moves, scan, now)  # last: it holds the feed's lock until the commit
    stats.clusters_changed += len(entries)
    stats.results_written += len(results)
    stats.change_events += len(events) + len(retargeted) - len(dropped)
