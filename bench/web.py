"""Web dashboard latency and SQL queries per page on a large evaluated fleet in PostgreSQL.

    python bench/web.py --clusters 50000 [--concurrency 8] [--requests 200] [--reuse]

Seeding goes through the production code without HTTP: the emulator's fleet generator and KQL
engine answer every batch query in-process, posture.scans.sweep.collect_batch_data normalizes
the rows as a scan would, posture.store.facts writes them and evaluate_scope scores them. Two scans are
stored (the second after a few percent of clusters went offline or changed), plus 40 older
snapshots for the trend chart. Then gunicorn serves the app on a free port and client threads
request the overview, the cluster list (unfiltered and filtered) and cluster detail pages
concurrently, all kinds interleaved. Latency is measured by the client; SQL queries per page are
counted in-process with Django's test client on the same database.

The last line reads: pages=… p50_ms=… p95_ms=… max_queries=…, where p50/p95 are those of the
slowest page kind (goal: p95 ≤ 100 ms) and max_queries the most queries any page issued
(goal: ≤ 15). Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_BROKER, DEFAULT_DATABASE, ROOT, app_env, cpu_seconds, process_tree, reset_database  # noqa: E402

PASSWORD = "bench password for the web dashboard"  # noqa: S105 - a throwaway benchmark database
USERNAME = "bench-admin"
BATCH_SUBSCRIPTIONS = 300
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- seeding ---------------------------------------------------------------------------------
class FleetSession:
    """Stands in for posture.collect.client.AzureSession: the emulator's KQL engine answers each
    query from the generated fleet, in pages of 1,000 rows, without HTTP."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet
        self.compiled: dict[str, Any] = {}

    def query(self, query: Any, *, subscriptions: list[str] | None = None, management_groups: list[str] | None = None) -> Iterator[Any]:
        from azure_emulator.arg import TABLE_SCHEMAS
        from azure_emulator.kql import compile_query
        from posture.collect.client import Page

        compiled = self.compiled.get(query.name) or self.compiled.setdefault(query.name, compile_query(query.text, TABLE_SCHEMAS))
        rows = compiled.run(self.fleet.rows(compiled.table, subscriptions or [], tenant_rows=False))
        for start in range(0, max(len(rows), 1), 1000):
            page = rows[start : start + 1000]
            yield Page(rows=page, raw=json.dumps({"count": len(page), "data": page}, default=str).encode(), request_id="bench")

    def get_resource(self, resource_id: str, api_version: str) -> tuple[dict[str, Any] | None, bytes]:
        from posture.scans.sweep import PCI_PATH

        body = self.fleet.provisioned_cluster_instances.get(resource_id[: -len(PCI_PATH)].lower())
        return body, json.dumps(body).encode()


def scan_fleet(scope: Any, fleet: Any, subscriptions: list[str]) -> Any:
    """One scan of every subscription, stored batch by batch as the pipeline does, then evaluated."""
    from django.db import transaction
    from django.utils import timezone

    from posture.models import QueryEvidence, Scan, ScanBatch
    from posture.scans.evaluation import evaluate_scope
    from posture.scans.sweep import collect_batch_data
    from posture.store import facts as store

    started = timezone.now()
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, trigger=Scan.Trigger.COMMAND, started_at=started)
    session = FleetSession(fleet)
    clusters = 0
    batches = [subscriptions[i : i + BATCH_SUBSCRIPTIONS] for i in range(0, len(subscriptions), BATCH_SUBSCRIPTIONS)]
    for number, subs in enumerate(batches, start=1):
        data = collect_batch_data(session, subs, on_page=lambda rows: None)
        now = timezone.now()
        with transaction.atomic():
            batch = ScanBatch.objects.create(
                scan=scan,
                number=number,
                subscriptions=subs,
                state=ScanBatch.State.DONE,
                attempts=1,
                finished_at=now,
                clusters=len(data.clusters),
                rows=data.rows,
                pages=data.pages,
                requests=data.pages,
            )
            store.store_clusters(data.clusters, scan, now)
            store.store_resources(data.resources, scan, now)
            for evidence in data.evidence:
                evidence.batch = batch
            QueryEvidence.objects.bulk_create(data.evidence)
        clusters += len(data.clusters)
        print(f"  batch {number}/{len(batches)}: {len(data.clusters):,} clusters", flush=True)
    store.mark_removed(scan, set(subscriptions), timezone.now())
    stats = evaluate_scope(scope.pk, scan=scan)
    Scan.objects.filter(pk=scan.pk).update(
        state=Scan.State.SUCCEEDED,
        finished_at=timezone.now(),
        subscriptions=len(subscriptions),
        batches_total=len(batches),
        batches_done=len(batches),
        clusters=clusters,
    )
    print(f"  evaluated {stats.clusters:,} clusters, {stats.change_events:,} changes in {stats.seconds:.1f} s", flush=True)
    return scan


def drift(fleet: Any, share: float, seed: int) -> int:
    """Some clusters go offline, others turn workload identity on: the second scan sees drift."""
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    changed = 0
    for row in list(fleet.clusters()):
        if rng.random() >= share:
            continue
        if rng.random() < 0.5:
            silent = (datetime.now(UTC) - timedelta(days=3)).isoformat()
            patch = {"properties": {"connectivityStatus": "Offline", "lastConnectivityTime": silent}}
        else:
            patch = {"properties": {"securityProfile": {"workloadIdentity": {"enabled": True}}}}
        fleet.update_cluster(row["id"], patch)
        changed += 1
    return changed


def history(scope: Any, points: int) -> None:
    """Older snapshots for the trend chart (copies of the first one, spread over past days)."""
    from posture.models import FleetSnapshot

    first = FleetSnapshot.objects.filter(scope=scope).order_by("created_at").first()
    rng = random.Random(1)
    FleetSnapshot.objects.bulk_create(
        FleetSnapshot(
            scope=scope,
            created_at=first.created_at - dt.timedelta(hours=6 * n),
            clusters=first.clusters,
            score=round(max(0.0, (first.score or 0) - n * 0.05 + rng.uniform(-0.5, 0.5)), 1),
            coverage=round(max(0.0, (first.coverage or 0) - n * 0.1), 1),
            grades=first.grades,
            controls=first.controls,
            sections=first.sections,
            paths=first.paths,
            connectivity=first.connectivity,
            changes={},
            catalog_version=first.catalog_version,
        )
        for n in range(1, points + 1)
    )


def seed(clusters: int, seed_value: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from azure_emulator import generate_fleet
    from posture.models import Scope
    from posture.roles import assign_role

    call_command("migrate", "--noinput", verbosity=0)
    began = time.monotonic()
    fleet = generate_fleet(clusters, seed_value)
    print(
        f"fleet: {fleet.cluster_count:,} clusters in {len(fleet.subscriptions)} subscriptions ({time.monotonic() - began:.0f} s)",
        flush=True,
    )
    scope = Scope.objects.create(name="bench", tenant_id=fleet.tenant_id)
    subscriptions = sorted(fleet.subscriptions)
    print("scan 1", flush=True)
    scan_fleet(scope, fleet, subscriptions)
    print(f"scan 2 ({drift(fleet, 0.04, seed_value):,} clusters drifted)", flush=True)
    scan_fleet(scope, fleet, subscriptions)
    history(scope, 40)
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    assign_role(user, "admin")
    with connection.cursor() as cursor:  # what autovacuum would have done by now
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded in {time.monotonic() - began:.0f} s", flush=True)


def table_sizes() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_size_pretty(pg_relation_size(oid)), pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
            "WHERE relname IN ('posture_cluster', 'posture_controlresult') ORDER BY relname"
        )
        return ", ".join(f"{name} heap {heap} (total {total})" for name, heap, total in cursor.fetchall())


# --- requests --------------------------------------------------------------------------------
def page_urls(requests_per_kind: int, rng: random.Random) -> dict[str, list[str]]:
    from posture.models import Cluster

    ids = list(Cluster.objects.filter(removed_at__isnull=True).values_list("pk", flat=True))
    location = Cluster.objects.values_list("location", flat=True).first()
    filtered = [
        "?connectivity=Offline",
        "?grade=F&sort=-score",
        "?tag=env%3Dprod",
        "?control=ARC-PL-01&sort=-failing",
        "?q=aks-dc",
        f"?location={location}&network_path=direct&page=3",
        "?distribution=k3s&sort=last_connectivity_at",
    ]
    return {
        "overview": ["/"] * requests_per_kind,
        "clusters": [f"/clusters/?page={rng.randint(1, 20)}" for _ in range(requests_per_kind)],
        "clusters_filtered": [f"/clusters/{filtered[i % len(filtered)]}" for i in range(requests_per_kind)],
        "cluster_detail": [f"/clusters/{rng.choice(ids)}/" for _ in range(requests_per_kind)],
    }


def count_queries(urls: dict[str, list[str]]) -> dict[str, int]:
    """Most SQL queries any distinct URL of each kind issued (in-process, cold filter cache)."""
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username=USERNAME))
    counts = {}
    for kind, kind_urls in urls.items():
        worst = 0
        for url in sorted(set(kind_urls))[:10]:
            cache.clear()
            with CaptureQueriesContext(connection) as captured:
                status = client.get(url).status_code
            if status != 200:
                raise SystemExit(f"{url} answered {status}")
            worst = max(worst, len(captured.captured_queries))
        counts[kind] = worst
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "web.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def signed_in_session(base: str) -> Any:
    import requests

    session = requests.Session()
    page = session.get(base + "/login/", timeout=30)
    token = CSRF_RE.search(page.text)
    if token is None:
        raise SystemExit("no CSRF token on the login page")
    response = session.post(
        base + "/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": base + "/login/"},
        timeout=30,
        allow_redirects=False,
    )
    if response.status_code != 302:
        raise SystemExit(f"sign-in failed: {response.status_code}")
    return session


def measure(base: str, urls: dict[str, list[str]], concurrency: int, rng: random.Random) -> dict[str, list[float]]:
    jobs = [(kind, url) for kind, kind_urls in urls.items() for url in kind_urls]
    rng.shuffle(jobs)
    local = threading.local()
    sessions: list[Any] = []
    lock = threading.Lock()

    def run(job: tuple[str, str]) -> tuple[str, float]:
        if not hasattr(local, "session"):
            local.session = signed_in_session(base)
            with lock:
                sessions.append(local.session)
        started = time.perf_counter()
        response = local.session.get(base + job[1], timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{job[1]} answered {response.status_code}")
        return job[0], elapsed

    latencies: dict[str, list[float]] = {kind: [] for kind in urls}
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for kind, elapsed in pool.map(run, jobs):
            latencies[kind].append(elapsed)
    for session in sessions:
        session.close()
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--requests", type=int, default=200, help="requests per page kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (the machine has 2 cores)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="Redis for the cache (as in production)")
    parser.add_argument("--reuse", action="store_true", help="keep the database of a previous run with the same --clusters")
    args = parser.parse_args()

    env = app_env(args.database, args.broker, ALLOWED_HOSTS="127.0.0.1,localhost")
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "ARC_VAR_DIR", "LOG_LEVEL")})
    import django

    if not args.reuse:
        print(f"resetting {args.database} …", flush=True)
        reset_database(args.database)
    django.setup()
    from posture.models import Cluster

    if not args.reuse or Cluster.objects.count() == 0:
        seed(args.clusters, args.seed)
    print(table_sizes(), flush=True)
    clusters = Cluster.objects.filter(removed_at__isnull=True).count()
    rng = random.Random(args.seed)
    urls = page_urls(args.requests, rng)
    queries = count_queries(urls)
    port = free_port()
    server = start_server(env, port, args.workers, args.threads)
    base = f"http://127.0.0.1:{port}"
    try:
        warm = {kind: sorted(set(kind_urls))[:10] for kind, kind_urls in urls.items()}
        measure(base, warm, args.concurrency, rng)  # connections, caches, first-request imports
        load_before = os.getloadavg()[0]
        cpu_before = cpu_seconds(process_tree(server.pid))
        began = time.monotonic()
        latencies = measure(base, urls, args.concurrency, rng)
        wall = time.monotonic() - began
        app_cpu = cpu_seconds(process_tree(server.pid)) - cpu_before
        load_after = os.getloadavg()[0]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    total = sum(len(v) for v in latencies.values())
    print(
        f"\n{clusters:,} clusters · {total} requests in {wall:.1f} s ({total / wall:.0f}/s) · concurrency {args.concurrency} · "
        f"gunicorn {args.workers}×{args.threads} threads · {os.cpu_count()} CPUs"
    )
    print(f"gunicorn CPU {1000 * app_cpu / total:.1f} ms per request · load average {load_before:.1f} → {load_after:.1f}")
    print(f"{'page':<18} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
    summary = []
    for kind, values in latencies.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        summary.append((p50, p95))
        print(f"{kind:<18} {len(values):>8} {p50:>8.1f} {p95:>8.1f} {max(values):>8.1f} {queries[kind]:>8}")
    worst_p50 = max(p50 for p50, _ in summary)
    worst_p95 = max(p95 for _, p95 in summary)
    print(f"pages={len(latencies)} p50_ms={worst_p50:.1f} p95_ms={worst_p95:.1f} max_queries={max(queries.values())}")


if __name__ == "__main__":
    main()
