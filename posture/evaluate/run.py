"""One evaluation run over a scope's clusters: verdicts, diff against what is stored, writes of
only what changed, scores, and one FleetSnapshot of aggregates.

A cluster whose verdicts hash to the stored `results_hash` costs no write at all, so a rescan
where nothing changed writes no result rows and no change events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from posture.catalog.controls import CATALOG_VERSION
from posture.evaluate.context import Context, build_context
from posture.evaluate.rules import evaluate_cluster
from posture.evaluate.verdict import Verdict
from posture.models import ChangeEvent, Cluster, ControlResult, FleetSnapshot, Scan, Scope, ScoreHistory
from posture.scoring import ClusterScore, cluster_sections, score_cluster

log = logging.getLogger(__name__)
CHUNK = 2000
LOCK_STALE = dt.timedelta(minutes=30)
RESULT_FIELDS = ["status", "raw_status", "reason", "detail", "evidence", "attestation_id", "exception_id"]
CLUSTER_COLUMNS = (
    "pk",
    "key",
    "facts",
    "results_hash",
    "score",
    "grade",
    "coverage",
    "subscription_id",
    "resource_group",
    "tags",
    "network_path",
    "connectivity_status",
)


@dataclass
class RunStats:
    clusters: int = 0
    clusters_changed: int = 0
    results_written: int = 0
    change_events: int = 0
    seconds: float = 0.0

    @property
    def writes(self) -> int:
        return self.results_written + self.change_events


@dataclass
class Tally:
    clusters: int = 0
    scored: int = 0
    score_sum: float = 0.0
    covered: int = 0
    coverage_sum: float = 0.0
    grades: Counter[str] = field(default_factory=Counter)
    controls: dict[str, Counter[str]] = field(default_factory=dict)
    sections: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    paths: Counter[str] = field(default_factory=Counter)
    connectivity: Counter[str] = field(default_factory=Counter)
    worse: int = 0
    better: int = 0

    def add(self, row: dict[str, Any], verdicts: dict[str, Verdict], score: ClusterScore) -> None:
        self.clusters += 1
        if score.score is not None:
            self.scored += 1
            self.score_sum += score.score
        if score.coverage is not None:
            self.covered += 1
            self.coverage_sum += score.coverage
        self.grades[score.grade] += 1
        statuses = {control: verdict.status for control, verdict in verdicts.items()}
        for control, status in statuses.items():
            self.controls.setdefault(control, Counter())[status] += 1
        for (framework, section), status in cluster_sections(statuses).items():
            self.sections.setdefault(framework, {}).setdefault(section, Counter())[status] += 1
        self.paths[row["network_path"] or "unknown"] += 1
        self.connectivity[row["connectivity_status"] or "Unknown"] += 1
        if row["score"] is not None and score.score is not None:
            self.worse += score.score < row["score"]
            self.better += score.score > row["score"]


def digest(verdicts: dict[str, Verdict]) -> str:
    payload = [
        [c, v.status, v.raw_status, v.reason, v.detail, v.evidence, v.attestation_id, v.exception_id] for c, v in sorted(verdicts.items())
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _chunks(scope_id: int) -> Iterator[list[dict[str, Any]]]:
    last = 0
    base = Cluster.objects.filter(scope_id=scope_id, removed_at__isnull=True).order_by("pk")
    while True:
        rows = list(base.filter(pk__gt=last).values(*CLUSTER_COLUMNS)[:CHUNK])
        if not rows:
            return
        yield rows
        last = rows[-1]["pk"]


@contextmanager
def evaluation_lock(scope_id: int, wait_seconds: float = 1800) -> Iterator[None]:
    """One evaluation per scope at a time, across workers (a conditional UPDATE, not a DB lock)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        now = timezone.now()
        free = Q(evaluation_claimed_at__isnull=True) | Q(evaluation_claimed_at__lt=now - LOCK_STALE)
        if Scope.objects.filter(pk=scope_id).filter(free).update(evaluation_claimed_at=now):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"scope {scope_id} stayed locked by another evaluation")
        time.sleep(1.0)
    try:
        yield
    finally:
        Scope.objects.filter(pk=scope_id).update(evaluation_claimed_at=None)


def evaluate_scope(
    scope_id: int, *, scan: Scan | None = None, now: dt.datetime | None = None, heartbeat: Callable[[], None] = lambda: None
) -> RunStats:
    started = time.monotonic()
    with evaluation_lock(scope_id):
        ctx = build_context(now)
        stats, tally = RunStats(), Tally()
        for rows in _chunks(scope_id):
            changed = []
            for row in rows:
                cluster = {
                    "pk": row["pk"],
                    "subscription_id": row["subscription_id"],
                    "resource_group": row["resource_group"],
                    "tags": row["tags"],
                }
                verdicts = evaluate_cluster(row["facts"], cluster, ctx)
                score = score_cluster((c, v.status, v.raw_status) for c, v in verdicts.items())
                tally.add(row, verdicts, score)
                new_digest = digest(verdicts)
                if new_digest != row["results_hash"]:
                    changed.append((row, verdicts, score, new_digest))
            stats.clusters += len(rows)
            if changed:
                _store(changed, scan, ctx.now, stats)
            heartbeat()
        _save_snapshot(scope_id, scan, ctx, tally, stats)
    stats.seconds = time.monotonic() - started
    log.info(
        "evaluated scope %s: %s clusters, %s changed, %s writes in %.1f s",
        scope_id,
        stats.clusters,
        stats.clusters_changed,
        stats.writes,
        stats.seconds,
    )
    return stats


def _store(
    changed: list[tuple[dict[str, Any], dict[str, Verdict], ClusterScore, str]], scan: Scan | None, now: dt.datetime, stats: RunStats
) -> None:
    ids = [row["pk"] for row, *_ in changed]
    existing = {
        (r["cluster_id"], r["control"]): r
        for r in ControlResult.objects.filter(cluster_id__in=ids).values("cluster_id", "control", "since", *RESULT_FIELDS)
    }
    results, events, history, clusters = [], [], [], []
    for row, verdicts, score, new_digest in changed:
        for control, verdict in verdicts.items():
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
            moved = old is not None and old["status"] != verdict.status
            if moved:
                events.append(
                    ChangeEvent(
                        cluster_id=row["pk"], control=control, from_status=old["status"], to_status=verdict.status, scan=scan, at=now
                    )
                )
            since = old["since"] if old is not None and not moved else now
            results.append(ControlResult(cluster_id=row["pk"], control=control, since=since, scan=scan, updated_at=now, **new))
        if (score.score, score.grade, score.coverage) != (row["score"], row["grade"], row["coverage"]):
            history.append(
                ScoreHistory(cluster_id=row["pk"], scan=scan, at=now, score=score.score, grade=score.grade, coverage=score.coverage)
            )
        clusters.append(
            Cluster(
                pk=row["pk"],
                score=score.score,
                grade=score.grade,
                coverage=score.coverage,
                failing=score.failing,
                results_hash=new_digest,
                evaluated_at=now,
            )
        )
    retired = [(cid, control) for cid, control in existing]  # controls no longer in the catalog
    with transaction.atomic():
        ControlResult.objects.bulk_create(
            results,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["cluster", "control"],
            update_fields=[*RESULT_FIELDS, "since", "scan", "updated_at"],
        )
        ChangeEvent.objects.bulk_create(events, batch_size=1000)
        ScoreHistory.objects.bulk_create(history, batch_size=1000)
        Cluster.objects.bulk_update(clusters, ["score", "grade", "coverage", "failing", "results_hash", "evaluated_at"], batch_size=1000)
        for cluster_id, control in retired:
            ControlResult.objects.filter(cluster_id=cluster_id, control=control).delete()
    stats.clusters_changed += len(changed)
    stats.results_written += len(results)
    stats.change_events += len(events)


def _save_snapshot(scope_id: int, scan: Scan | None, ctx: Context, tally: Tally, stats: RunStats) -> None:
    FleetSnapshot.objects.create(
        scope_id=scope_id,
        scan=scan,
        created_at=ctx.now,
        clusters=tally.clusters,
        score=round(tally.score_sum / tally.scored, 1) if tally.scored else None,
        coverage=round(tally.coverage_sum / tally.covered, 1) if tally.covered else None,
        grades=dict(tally.grades),
        controls={c: dict(v) for c, v in tally.controls.items()},
        sections={f: {s: dict(c) for s, c in secs.items()} for f, secs in tally.sections.items()},
        paths=dict(tally.paths),
        connectivity=dict(tally.connectivity),
        changes={"events": stats.change_events, "clusters_changed": stats.clusters_changed, "worse": tally.worse, "better": tally.better},
        catalog_version=CATALOG_VERSION,
    )


def evaluate_all(*, now: dt.datetime | None = None) -> dict[str, RunStats]:
    return {scope.name: evaluate_scope(scope.pk, now=now) for scope in Scope.objects.all()}
