"""Evaluation speed on PostgreSQL: a first evaluation of a whole fleet, then a re-evaluation
where nothing changed.

    python bench/evaluate.py --clusters 50000

The fleet is collected once from the emulator (quota off, not timed); every verdict, score and
snapshot is then dropped and the evaluation timed twice. The last two lines read
`clusters=… evaluate_s=… writes=…`: first evaluation, then the no-change re-evaluation.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import scanned_bench  # noqa: E402


def main() -> None:
    args, work = scanned_bench(__doc__, "bench-evaluate-")
    from django.db import connection

    from posture.models import ChangeEvent, Cluster, ControlResult, FleetSnapshot, Scope, ScoreHistory, VerdictHistory
    from posture.scans.evaluation import evaluate_scope

    scope = Scope.objects.get(name="bench")
    # As after a first scan: no verdicts at all (TRUNCATE, so no dead rows slow the inserts).
    tables = ", ".join(m._meta.db_table for m in (ControlResult, ChangeEvent, VerdictHistory, ScoreHistory, FleetSnapshot))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}")
        cursor.execute(f"VACUUM ANALYZE {Cluster._meta.db_table}")
    Cluster.objects.update(results_hash="", evaluated_inputs="", statuses="", score=None, grade="", coverage=None, failing=0)
    lines = []
    for label in ("first evaluation", "no-change re-evaluation"):
        stats = evaluate_scope(scope.pk)
        print(
            f"{label}: {stats.clusters:,} clusters, {stats.clusters_checked:,} checked, {stats.results_written:,} results, "
            f"{stats.change_events:,} change events",
            flush=True,
        )
        lines.append(f"clusters={stats.clusters} evaluate_s={stats.seconds:.1f} writes={stats.writes}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
