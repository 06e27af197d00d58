"""One full scan of an emulated fleet by a real Celery worker on PostgreSQL and Redis.

    python bench/scan.py --clusters 50000 [--quota 15/5|off] [--concurrency 2]

The last line reads: clusters=… requests=… wall_s=… quota_bound_s=… ratio=… clusters_per_s=…
worker_peak_rss_mb=…, where quota_bound_s is the least time the ARG quota allows for the
Resource Graph requests made and ratio = wall_s / quota_bound_s. worker_peak_rss_mb is the peak
RSS of the largest worker process (the worker's whole process tree is printed above it).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    DEFAULT_BROKER,
    DEFAULT_DATABASE,
    Emulator,
    Worker,
    add_scope,
    app_env,
    cpu_seconds,
    manage,
    postgres_pids,
    process_tree,
    reset_database,
)


def quota_bound(requests: int, quota: str) -> float | None:
    """Least seconds a rolling window of `limit` requests per `window` s allows for `requests`."""
    if quota == "off" or requests == 0:
        return None
    limit, window = quota.split("/")
    return (math.ceil(requests / int(limit)) - 1) * float(window)


def timeline(span: dict[str, dict[str, str]], started_at: str, stored_s: str, finished_at: str) -> str:
    """Where the wall time went, in seconds after the scan started (the emulator's answer times)."""
    start = datetime.fromisoformat(started_at)

    def at(stamp: str) -> str:
        return f"+{(datetime.fromisoformat(stamp) - start).total_seconds():.1f}"

    parts = [f"{label} {at(span[kind]['first'])}…{at(span[kind]['last'])}" for kind, label in KINDS.items() if kind in span]
    return f"timeline (s after the scan started): {', '.join(parts)}, last batch stored +{stored_s}, scan finished {at(finished_at)}"


KINDS = {"arg": "Resource Graph answers", "arm": "ARM answers"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument("--quota", default="15/5", help="limit/window_seconds, or off")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=2, help="collect worker processes (the machine has 2 cores)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--broker", default=DEFAULT_BROKER)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    print(f"resetting {args.database} …", flush=True)
    reset_database(args.database)
    started = time.monotonic()
    emulator = Emulator(args.clusters, args.seed, args.quota, work / "emulator")
    print(
        f"emulator: {emulator.info['clusters']:,} clusters in {emulator.info['subscriptions']} subscriptions, up in "
        f"{time.monotonic() - started:.1f} s",
        flush=True,
    )
    try:
        run(args, emulator, work)
    finally:
        emulator.stop()


def run(args: argparse.Namespace, emulator: Emulator, work: Path) -> None:
    info = emulator.info
    env = app_env(args.database, args.broker, AZURE_CLIENT_ID=info["client_id"], AZURE_CLIENT_SECRET=info["client_secret"])
    add_scope(env, info)
    import redis

    redis.Redis.from_url(args.broker).flushdb()
    # As in docker-compose.yml: sweeps on their own workers, evaluation on the default queue's,
    # which yield the CPU to the sweeps: the quota sets their pace, and a late page costs quota time.
    workers = [
        Worker(env, args.concurrency, work / "worker-collect.log", queues="collect"),
        Worker(env, 1, work / "worker-default.log", queues="default", nice=10),
    ]
    groups = {
        "emulator": lambda: process_tree(emulator.process.pid),
        "workers": lambda: [p for w in workers for p in process_tree(w.process.pid)],
        "postgres": postgres_pids,
    }
    cpu_before = {name: cpu_seconds(pids()) for name, pids in groups.items()}
    try:
        began = time.monotonic()
        manage(env, "scan", "--scope", "bench", "--wait")
        wall = time.monotonic() - began
        cpu = {name: cpu_seconds(pids()) - cpu_before[name] for name, pids in groups.items()}
    finally:
        for worker in workers:
            worker.stop()
    stats = emulator.stats()
    summary = manage(
        env,
        "shell",
        "--no-imports",
        "-c",
        (
            "from posture.models import Scan, Cluster, ControlResult;"
            "from django.db.models import Max;"
            "s = Scan.objects.get();"
            "stored = s.batches.aggregate(m=Max('finished_at'))['m'];"
            "print(s.state, s.clusters, s.requests, round(s.quota_wait_seconds, 1), s.throttled,"
            " Cluster.objects.count(), ControlResult.objects.count(), round((stored - s.started_at).total_seconds(), 1),"
            " s.started_at.isoformat(), s.finished_at.isoformat())"
        ),
    ).split()
    state, clusters, requests, waited, throttled, stored, results, collect_s, started_at, finished_at = summary
    arg_requests = stats["arg_accepted"]
    bound = quota_bound(arg_requests, args.quota)
    print(
        f"scan {state}: {int(stored):,} clusters stored, {int(results):,} results, {requests} Azure requests "
        f"({arg_requests} Resource Graph, {stats['arm_gets']} ARM), "
        f"429s: Resource Graph {stats['arg_throttled']}, ARM {stats['arm_throttled']}, quota wait {waited} s",
        flush=True,
    )
    print(f"collected and stored (every batch) in {collect_s} s; the whole scan, evaluation included, in {wall:.1f} s")
    print(timeline(stats["span"], started_at, collect_s, finished_at))
    print(
        "CPU seconds during the scan: "
        + ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items())
        + f" (the machine offers {wall * (os.cpu_count() or 1):.0f} on {os.cpu_count()} cores)"
    )
    for worker in workers:
        print(f"{worker.log.stem}: process tree peak RSS {worker.peak_tree_mb:.0f} MB, largest process {worker.peak_process_mb:.0f} MB")
    print(
        f"clusters={int(clusters)} requests={int(requests)} wall_s={wall:.1f} "
        f"quota_bound_s={bound if bound is not None else 'n/a'} "
        f"ratio={wall / bound:.3f}"
        if bound
        else f"clusters={int(clusters)} requests={int(requests)} wall_s={wall:.1f} quota_bound_s=n/a ratio=n/a",
        end="",
    )
    print(f" clusters_per_s={int(clusters) / wall:.0f} worker_peak_rss_mb={max(w.peak_process_mb for w in workers):.0f}")


if __name__ == "__main__":
    main()
