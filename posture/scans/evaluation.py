"""One evaluation run over a scope's clusters: verdicts, diff against what is stored, writes of
only what changed (posture.store.results), scores, and one FleetSnapshot of aggregates.

A cluster whose verdicts hash to the stored `results_hash` costs no write at all, so a rescan
where nothing changed writes no result rows and no change events.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from posture.evaluate.context import Context, build_context, cluster_keys, context_refs
from posture.evaluate.lock import EvaluationLock, evaluation_lock
from posture.evaluate.rules import evaluate_cluster
from posture.evaluate.scoring import score_cluster
from posture.evaluate.tally import CONTROL_IDS, STATUS_CODES, Tally, stored_score
from posture.feed.publish import publish_moves
from posture.models import Cluster, ControlResult, Scan, Scope
from posture.models.inventory import CLUSTER_EVALUATION_COLUMNS
from posture.store import bulk
from posture.store.results import Entry, Writer, digest_lines, result_line, store_chunk
from posture.store.snapshots import save_snapshot

log = logging.getLogger(__name__)
CHUNK = 2000


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
        save_snapshot(scope_id, scan, ctx.now, tally)
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
    columns = (*CLUSTER_EVALUATION_COLUMNS, "tags") if ctx.attestations or ctx.exceptions else CLUSTER_EVALUATION_COLUMNS
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
    writer.submit(store_chunk, refreshed, fresh, changed, scan, ctx.now, stats, publish_moves)


def evaluate_all(*, now: dt.datetime | None = None) -> dict[str, RunStats]:
    return {scope.name: evaluate_scope(scope.pk, now=now) for scope in Scope.objects.all()}
