"""One evaluation run over a scope's clusters: verdicts, diff against what is stored, writes of
only what changed, scores, and one FleetSnapshot of aggregates.

A cluster whose verdicts hash to the stored `results_hash` costs no write at all, so a rescan
where nothing changed writes no result rows and no change events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from django.db import connection, connections, transaction

from posture.catalog.controls import CATALOG_VERSION, CONTROLS
from posture.evaluate.context import Context, build_context, cluster_keys, context_refs
from posture.evaluate.lock import EvaluationLock, evaluation_lock
from posture.evaluate.rules import evaluate_cluster
from posture.evaluate.scoring import SECTION_CONTROLS, ClusterScore, score_cluster, section_status
from posture.evaluate.verdict import Verdict
from posture.models import ChangeEvent, Cluster, ControlResult, FleetSnapshot, Scan, Scope, ScoreHistory, Status
from posture.store import bulk

log = logging.getLogger(__name__)
CHUNK = 2000
RESULT_FIELDS = ("status", "raw_status", "reason", "detail", "evidence", "attestation_id", "exception_id")
RESULT_COLUMNS = ("cluster_id", "control", *RESULT_FIELDS, "since", "updated_at")
CONTROL_IDS = tuple(c.id for c in CONTROLS)
CLUSTER_COLUMNS = (
    "pk",
    "facts_hash",
    "results_hash",
    "evaluated_inputs",
    "evaluated_refs",
    "statuses",
    "score",
    "grade",
    "coverage",
    "subscription_id",
    "resource_group",
    "network_path",
    "connectivity_status",
    "last_connectivity_at",
)
NULL = "\\N"
STATUS_CODES = {"pass": "P", "fail": "F", "unknown": "U", "not_applicable": "N", "attested": "A", "excepted": "E"}
STATUS_OF_CODE = {code: status for status, code in STATUS_CODES.items()}
# Each benchmark section's controls picked out of a status vector (a letter, or a tuple of them).
SECTION_PICKERS = {key: itemgetter(*(CONTROL_IDS.index(c) for c in controls)) for key, controls in SECTION_CONTROLS.items()}


@dataclass
class RunStats:
    clusters: int = 0
    clusters_checked: int = 0
    clusters_changed: int = 0
    results_written: int = 0
    change_events: int = 0
    seconds: float = 0.0
    analyze_deferred: bool = False

    @property
    def writes(self) -> int:
        return self.results_written + self.change_events


@dataclass
class Tally:
    """Fleet aggregates. Clusters are counted by their vector of control statuses (one letter per
    control, as stored): a fleet has far fewer distinct vectors than clusters, and each section
    has fewer still, so statuses are resolved once per distinct vector or section sub-vector."""

    clusters: int = 0
    scored: int = 0
    score_sum: float = 0.0
    covered: int = 0
    coverage_sum: float = 0.0
    grades: Counter[str] = field(default_factory=Counter)
    vectors: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    connectivity: Counter[str] = field(default_factory=Counter)

    def add(self, row: dict[str, Any], codes: str, score: ClusterScore) -> None:
        self.clusters += 1
        if score.score is not None:
            self.scored += 1
            self.score_sum += score.score
        if score.coverage is not None:
            self.covered += 1
            self.coverage_sum += score.coverage
        self.grades[score.grade] += 1
        self.vectors[codes] += 1
        self.paths[row["network_path"] or "unknown"] += 1
        self.connectivity[row["connectivity_status"] or "Unknown"] += 1

    def controls(self) -> dict[str, dict[str, int]]:
        result: dict[str, Counter[str]] = {c: Counter() for c in CONTROL_IDS}
        for codes, count in self.vectors.items():
            for control, code in zip(CONTROL_IDS, codes, strict=True):
                result[control][STATUS_OF_CODE[code]] += count
        return {c: dict(v) for c, v in result.items()}

    def sections(self) -> dict[str, dict[str, dict[str, int]]]:
        result: dict[str, dict[str, dict[str, int]]] = {}
        for (framework, section), pick in SECTION_PICKERS.items():
            # How many clusters show each combination of this section's control statuses.
            combinations: Counter[Any] = Counter()
            for codes, count in self.vectors.items():
                combinations[pick(codes)] += count
            counts: Counter[str] = Counter()
            for combination, count in combinations.items():
                counts[section_status(STATUS_OF_CODE[code] for code in combination)] += count
            result.setdefault(framework, {})[section] = dict(counts)
        return result


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


def _chunks(scope_id: int, subscriptions: list[str] | None, size: int, columns: tuple[str, ...]) -> Iterator[list[dict[str, Any]]]:
    last = 0
    base = Cluster.objects.filter(scope_id=scope_id, removed_at__isnull=True).order_by("pk")
    if subscriptions is not None:
        base = base.filter(subscription_id__in=subscriptions)
    while True:
        rows = list(base.filter(pk__gt=last).values(*columns)[:size])
        if not rows:
            return
        yield rows
        last = rows[-1]["pk"]


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


def evaluate_scope(
    scope_id: int,
    *,
    scan: Scan | None = None,
    now: dt.datetime | None = None,
    subscriptions: list[str] | None = None,
    heartbeat: Callable[[], None] = lambda: None,
    defer_analyze: bool = False,
    chunk: int = CHUNK,
    lock: EvaluationLock | None = None,
    wait_seconds: float = 1800,
    waiting: Callable[[], None] = lambda: None,
) -> RunStats:
    """Evaluate the scope's clusters (or only those of `subscriptions`: one batch of a running
    scan, without a snapshot) and, for a whole scope, snapshot the fleet. With `defer_analyze`
    the caller refreshes the planner statistics (stats.analyze_deferred) once its work is visible.
    `heartbeat` is called after each `chunk` clusters and may raise to stop.

    The scope's evaluation lock is taken here (waiting up to `wait_seconds`, calling `waiting`
    between looks; ScopeBusy after), unless the caller holds it already and passes it as `lock`."""
    started = time.monotonic()
    if lock is None:
        with evaluation_lock(scope_id, wait_seconds, waiting) as held:
            return evaluate_scope(
                scope_id,
                scan=scan,
                now=now,
                subscriptions=subscriptions,
                heartbeat=heartbeat,
                defer_analyze=defer_analyze,
                chunk=chunk,
                lock=held,
            )

    def beat() -> None:
        lock.renew()  # raises LockLost: stop before writing what another evaluation may be writing
        heartbeat()

    ctx = build_context(now)
    stats, tally, writer = RunStats(), Tally(), Writer()
    try:
        _run(scope_id, subscriptions, ctx, tally, scan, stats, writer, beat, chunk)
    finally:
        writer.close()
    if stats.results_written >= bulk.ANALYZE_AFTER_ROWS:
        if defer_analyze:
            stats.analyze_deferred = True
        else:
            bulk.analyze(ControlResult, Cluster)
    if subscriptions is None:
        lock.renew()
        _save_snapshot(scope_id, scan, ctx, tally, stats)
    stats.seconds = time.monotonic() - started
    log.info(
        "evaluated scope %s: %s clusters, %s re-checked, %s changed, %s writes in %.1f s",
        scope_id,
        stats.clusters,
        stats.clusters_checked,
        stats.clusters_changed,
        stats.writes,
        stats.seconds,
    )
    return stats


def _run(
    scope_id: int,
    subscriptions: list[str] | None,
    ctx: Context,
    tally: Tally,
    scan: Scan | None,
    stats: RunStats,
    writer: Writer,
    heartbeat: Callable[[], None],
    chunk: int,
) -> None:
    # Tags (long, JSON) are read only where decisions may match on them, or to evaluate a cluster.
    columns = (*CLUSTER_COLUMNS, "tags") if ctx.attestations or ctx.exceptions else CLUSTER_COLUMNS
    for rows in _chunks(scope_id, subscriptions, chunk, columns):
        todo = []
        for row in rows:
            row["inputs"] = ctx.inputs(row, row["evaluated_refs"])
            if row["inputs"] == row["evaluated_inputs"] and len(row["statuses"]) == len(CONTROL_IDS):
                # Same facts, same context, same staleness: the stored verdicts still hold.
                tally.add(row, row["statuses"], stored_score(row))
            else:
                todo.append(row)
        if todo:
            _evaluate(todo, ctx, tally, scan, stats, writer)
        stats.clusters += len(rows)
        heartbeat()


def _evaluate(todo: list[dict[str, Any]], ctx: Context, tally: Tally, scan: Scan | None, stats: RunStats, writer: Writer) -> None:
    facts, tags = {}, {}
    for pk, cluster_facts, cluster_tags in Cluster.objects.filter(pk__in=[row["pk"] for row in todo]).values_list("pk", "facts", "tags"):
        facts[pk], tags[pk] = cluster_facts, cluster_tags
    fresh, changed, refreshed = [], [], []
    for row in todo:
        row["tags"] = tags[row["pk"]]
        refs = context_refs(facts[row["pk"]])
        inputs = row["inputs"] if refs == row["evaluated_refs"] else ctx.inputs(row, refs)
        cluster = cluster_keys(row)
        verdicts = evaluate_cluster(facts[row["pk"]], cluster, ctx)
        score = score_cluster((c, v.status, v.raw_status) for c, v in verdicts.items())
        codes = "".join(STATUS_CODES[verdicts[c].status] for c in CONTROL_IDS)
        tally.add(row, codes, score)
        lines = [result_line(c, verdicts[c]) for c in CONTROL_IDS]
        entry = Entry(row, verdicts, score, digest_lines(lines), inputs, refs, codes, lines)
        if not row["results_hash"]:
            fresh.append(entry)
        elif entry.digest != row["results_hash"]:
            changed.append(entry)
        else:
            refreshed.append({"id": row["pk"], "evaluated_inputs": inputs, "evaluated_refs": refs, "statuses": entry.codes})
    stats.clusters_checked += len(todo)
    writer.submit(_write, refreshed, fresh, changed, scan, ctx.now, stats)


def _write(
    refreshed: list[dict[str, Any]], fresh: list[Entry], changed: list[Entry], scan: Scan | None, now: dt.datetime, stats: RunStats
) -> None:
    if refreshed:
        with transaction.atomic():
            bulk.relax_durability()
            bulk.update(Cluster, "id", ("evaluated_inputs", "evaluated_refs", "statuses"), refreshed)
    if fresh:
        _store_fresh(fresh, scan, now, stats)
    if changed:
        _store(changed, scan, now, stats)


@dataclass
class Entry:
    row: dict[str, Any]
    verdicts: dict[str, Verdict]
    score: ClusterScore
    digest: str
    inputs: str
    refs: str
    codes: str
    lines: list[str]


def stored_score(row: dict[str, Any]) -> ClusterScore:
    return ClusterScore(row["score"], row["grade"], row["coverage"], 0)


def _store_fresh(entries: list[Entry], scan: Scan | None, now: dt.datetime, stats: RunStats) -> None:
    """First results of clusters never evaluated: streamed straight in, no diff, no conflicts."""
    if not bulk.copy_supported() or ControlResult.objects.filter(cluster_id__in=[e.row["pk"] for e in entries]).exists():
        _store(entries, scan, now, stats)
        return
    tail = f"{now.isoformat()}\t{now.isoformat()}"
    with transaction.atomic():
        bulk.relax_durability()
        bulk.copy_lines(ControlResult, RESULT_COLUMNS, (f"{e.row['pk']}\t{line}\t{tail}" for e in entries for line in e.lines))
        _store_scores(entries, scan, now)
    stats.clusters_changed += len(entries)
    stats.results_written += len(entries) * len(CONTROL_IDS)


def _store_scores(entries: list[Entry], scan: Scan | None, now: dt.datetime) -> None:
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


def _store(entries: list[Entry], scan: Scan | None, now: dt.datetime, stats: RunStats) -> None:
    ids = [e.row["pk"] for e in entries]
    existing = {
        (r["cluster_id"], r["control"]): r
        for r in ControlResult.objects.filter(cluster_id__in=ids).values("cluster_id", "control", "since", *RESULT_FIELDS)
    }
    scan_id = scan.pk if scan else None
    # A scan evaluates each batch early and then the whole scope: a status moved twice within one
    # scan is one change, and a cluster new in the scan had no status to change from.
    in_scan = _events_of_scan(scan, ids)
    new_in_scan = _new_in_scan(scan, ids)
    results, events, retargeted, dropped = [], [], [], []
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
            moved = old is not None and old["status"] != verdict.status
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
        ChangeEvent.objects.filter(pk__in=dropped).delete()
        _store_scores(entries, scan, now)
        for cluster_id, control in retired:
            ControlResult.objects.filter(cluster_id=cluster_id, control=control).delete()
    stats.clusters_changed += len(entries)
    stats.results_written += len(results)
    stats.change_events += len(events) + len(retargeted) - len(dropped)


def _new_in_scan(scan: Scan | None, cluster_ids: list[int]) -> set[int]:
    if scan is None or scan.started_at is None:
        return set()
    return set(Cluster.objects.filter(pk__in=cluster_ids, first_seen_at__gte=scan.started_at).values_list("pk", flat=True))


def _events_of_scan(scan: Scan | None, cluster_ids: list[int]) -> dict[tuple[int, str], dict[str, Any]]:
    if scan is None:
        return {}
    events = ChangeEvent.objects.filter(scan=scan, cluster_id__in=cluster_ids).values("pk", "cluster_id", "control", "from_status")
    return {(e["cluster_id"], e["control"]): e for e in events}


def _save_snapshot(scope_id: int, scan: Scan | None, ctx: Context, tally: Tally, stats: RunStats) -> None:
    aggregates = {
        "scope_id": scope_id,
        "created_at": ctx.now,
        "clusters": tally.clusters,
        "score": round(tally.score_sum / tally.scored, 1) if tally.scored else None,
        "coverage": round(tally.coverage_sum / tally.covered, 1) if tally.covered else None,
        "grades": dict(tally.grades),
        "controls": tally.controls(),
        "sections": tally.sections(),
        "paths": dict(tally.paths),
        "connectivity": dict(tally.connectivity),
        "changes": _changes(scope_id, scan, ctx.now),
        "catalog_version": CATALOG_VERSION,
    }
    if scan is None:
        FleetSnapshot.objects.create(**aggregates)
        return
    # One snapshot per scan (a database constraint): a finish run again, say after its first
    # run died between the snapshot and closing the scan, brings that one up to date.
    FleetSnapshot.objects.update_or_create(scan=scan, defaults=aggregates)


GOOD = (Status.PASS, Status.ATTESTED, Status.NOT_APPLICABLE)


def _changes(scope_id: int, scan: Scan | None, now: dt.datetime) -> dict[str, int]:
    """What changed in this scan (its batches evaluated early) or, without a scan, in this run."""
    events = ChangeEvent.objects.filter(cluster__scope_id=scope_id)
    events = events.filter(scan=scan) if scan else events.filter(scan__isnull=True, at=now)
    return {
        "events": events.count(),
        "clusters_changed": events.values("cluster_id").distinct().count(),
        # Clusters with a control that got worse (better); a cluster may count in both.
        "worse": events.filter(from_status__in=GOOD).exclude(to_status__in=GOOD).values("cluster_id").distinct().count(),
        "better": events.exclude(from_status__in=GOOD).filter(to_status__in=GOOD).values("cluster_id").distinct().count(),
    }


def evaluate_all(*, now: dt.datetime | None = None) -> dict[str, RunStats]:
    return {scope.name: evaluate_scope(scope.pk, now=now) for scope in Scope.objects.all()}
