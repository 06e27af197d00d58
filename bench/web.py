"""Web dashboard latency and SQL queries per page on a large evaluated fleet in PostgreSQL.

    python bench/web.py --clusters 50000 [--concurrency 8] [--requests 200] [--reuse]

Seeding (bench/web_fleet.py) goes through the production code without HTTP and stores two scans
plus 40 older snapshots for the trend chart. Then gunicorn serves the app on a free port and client threads
request the overview, the cluster list (unfiltered and filtered) and cluster detail pages, and the
API's read endpoints (/api/v1/, with a bearer token as a SIEM sends it) concurrently, all kinds
interleaved. The API's per-token rate limit is raised for the run: it is not what is measured.
Latency is measured by the client; SQL queries per page are counted in-process with Django's
test client on the same database.

The last line reads: pages=… (page and API kinds) p50_ms=… p95_ms=… max_queries=…, where p50/p95 are those of the
slowest page kind (goal: p95 ≤ 100 ms) and max_queries the most queries any page issued
(goal: ≤ 15). Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import re
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_BROKER, DEFAULT_DATABASE, ROOT, app_env, cpu_seconds, process_tree, reset_database  # noqa: E402
from bench.web_fleet import PASSWORD, USERNAME, seed, table_sizes  # noqa: E402

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


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
        **api_urls(requests_per_kind, rng, ids, location),
    }


def api_urls(requests_per_kind: int, rng: random.Random, ids: list[int], location: str | None) -> dict[str, list[str]]:
    """The API's read endpoints, each a kind of its own (exports, which build files, are not)."""
    from posture.models import Scan

    scans = [str(pk) for pk in Scan.objects.values_list("pk", flat=True)[:20]]
    filtered = ["?grade=F&sort=-score", "?connectivity=Offline", "?control=ARC-PL-01&sort=-failing", f"?location={location}", "?q=aks-dc"]
    fixed = {
        "api_fleet": "/api/v1/fleet/",
        "api_fleet_trend": "/api/v1/fleet/trend/",
        "api_scopes": "/api/v1/scopes/",
        "api_scans": "/api/v1/scans/",
        "api_controls": "/api/v1/controls/",
        "api_frameworks": "/api/v1/frameworks/",
        "api_changes": "/api/v1/changes?limit=100",
    }
    kinds = {kind: [url] * requests_per_kind for kind, url in fixed.items()}
    kinds["api_scan_detail"] = [f"/api/v1/scans/{rng.choice(scans)}/" for _ in range(requests_per_kind)]
    kinds["api_clusters"] = [f"/api/v1/clusters/{filtered[i % len(filtered)]}" for i in range(requests_per_kind)]
    kinds["api_cluster_detail"] = [f"/api/v1/clusters/{rng.choice(ids)}/" for _ in range(requests_per_kind)]
    kinds["api_control_detail"] = [
        f"/api/v1/controls/{c}/" for c in rng.choices(["ARC-PL-01", "ARC-NP-01", "ARC-NET-03"], k=requests_per_kind)
    ]
    return kinds


def api_token() -> str:
    """A bearer token of the bench user, as a SIEM would hold one."""
    from django.contrib.auth import get_user_model

    from posture import tokens

    return tokens.issue(get_user_model().objects.get(username=USERNAME), "bench", days=1)[1]


def count_queries(urls: dict[str, list[str]], token: str) -> dict[str, int]:
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
                headers = {"Authorization": f"Bearer {token}"} if url.startswith("/api/") else {}
                status = client.get(url, headers=headers).status_code
            if status != 200:
                raise SystemExit(f"{url} answered {status}")
            worst = max(worst, len(captured.captured_queries))
        counts[kind] = worst
    return counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int, workers: int, threads: int, worker_class: str) -> subprocess.Popen[bytes]:
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
            worker_class,
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


def signed_in_cookie(base: str) -> str:
    """The session cookie of a browser that signed in through the login form."""
    import requests

    with requests.Session() as session:
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
        return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


class Client:
    """One client thread: http.client rather than requests, because the load generator shares the
    machine's two cores with the server and requests costs several times the CPU per call. A page
    is asked with the browser's session cookie; an API endpoint with the bearer token alone, as a
    SIEM sends it (no cookie).

    By default each request opens a connection and closes it, as the TLS proxy in front of the
    app does (docker-compose.yml; nginx speaks HTTP/1.0 to its upstream and closes after each
    answer unless told otherwise). With --keep-alive each client keeps one connection, which
    gunicorn's gthread worker pins to the process that accepted it: eight long-lived connections
    over four processes split unevenly by chance (3/2/2/1, say), and requests on a crowded process
    wait while another idles, so the tail then measures that split more than the code."""

    def __init__(self, port: int, cookie: str, token: str, keep_alive: bool) -> None:
        self.port, self.cookie, self.token, self.keep_alive = port, cookie, token, keep_alive
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, url: str) -> int:
        headers = {"Authorization": f"Bearer {self.token}"} if url.startswith("/api/") else {"Cookie": self.cookie}
        if not self.keep_alive:
            headers["Connection"] = "close"
        try:
            self.connection.request("GET", url, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            # gunicorn closes idle keep-alive connections (keepalive=2 s): open another, once.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.request("GET", url, headers=headers)
            response = self.connection.getresponse()
        response.read()
        if not self.keep_alive:
            self.connection.close()  # http.client connects again on the next request
        return response.status


def signed_in_clients(port: int, concurrency: int, token: str, keep_alive: bool) -> list[Client]:
    """Every client signs in before the clock starts: a sign-in hashes the password (PBKDF2, about
    half a second of CPU), and eight of them at once stalled the first timed requests."""
    return [Client(port, signed_in_cookie(f"http://127.0.0.1:{port}"), token, keep_alive) for _ in range(concurrency)]


def measure(clients: list[Client], urls: dict[str, list[str]], rng: random.Random) -> dict[str, list[float]]:
    jobs = [(kind, url) for kind, kind_urls in urls.items() for url in kind_urls]
    rng.shuffle(jobs)
    idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
    for client in clients:
        idle.put(client)
    local = threading.local()

    def run(job: tuple[str, str]) -> tuple[str, float]:
        if not hasattr(local, "client"):
            local.client = idle.get_nowait()
        started = time.perf_counter()
        status = local.client.get(job[1])
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise SystemExit(f"{job[1]} answered {status}")
        return job[0], elapsed

    latencies: dict[str, list[float]] = {kind: [] for kind in urls}
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        for kind, elapsed in pool.map(run, jobs):
            latencies[kind].append(elapsed)
    for client in clients:
        client.connection.close()
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
    # By default what gunicorn.conf.py gives production on this machine.
    served = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    parser.add_argument("--workers", type=int, default=served["workers"], help="gunicorn worker processes (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=served["threads"], help="threads per gunicorn worker (default: gunicorn.conf.py's)")
    parser.add_argument("--worker-class", default=served["worker_class"], help="gunicorn worker class (default: gunicorn.conf.py's)")
    parser.add_argument("--keep-alive", action="store_true", help="one kept connection per client (default: one per request)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="Redis for the cache (as in production)")
    parser.add_argument("--reuse", action="store_true", help="keep the database of a previous run with the same --clusters")
    args = parser.parse_args()

    env = app_env(args.database, args.broker, ALLOWED_HOSTS="127.0.0.1,localhost", ARC_API_RATE="1000000/min")
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "ARC_VAR_DIR", "LOG_LEVEL")})
    import django

    if not args.reuse:
        print(f"resetting {args.database} …", flush=True)
        reset_database(args.database)
    django.setup()
    from django.core.management import call_command

    from posture.models import Cluster

    call_command("migrate", "--noinput", verbosity=0)  # a kept database may predate this code's migrations

    if not args.reuse or Cluster.objects.count() == 0:
        seed(args.clusters, args.seed)
    print(table_sizes(), flush=True)
    clusters = Cluster.objects.filter(removed_at__isnull=True).count()
    rng = random.Random(args.seed)
    urls = page_urls(args.requests, rng)
    token = api_token()
    queries = count_queries(urls, token)
    port = free_port()
    server = start_server(env, port, args.workers, args.threads, args.worker_class)
    try:
        warm = {kind: sorted(set(kind_urls))[:10] for kind, kind_urls in urls.items()}
        measure(signed_in_clients(port, args.concurrency, token, args.keep_alive), warm, rng)  # caches, first-request imports
        clients = signed_in_clients(port, args.concurrency, token, args.keep_alive)
        load_before = os.getloadavg()[0]
        cpu_before = cpu_seconds(process_tree(server.pid))
        client_before = time.process_time()
        began = time.monotonic()
        latencies = measure(clients, urls, rng)
        wall = time.monotonic() - began
        app_cpu = cpu_seconds(process_tree(server.pid)) - cpu_before
        client_cpu = time.process_time() - client_before
        load_after = os.getloadavg()[0]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    total = sum(len(v) for v in latencies.values())
    print(
        f"\n{clusters:,} clusters · {total} requests in {wall:.1f} s ({total / wall:.0f}/s) · concurrency {args.concurrency} · "
        f"gunicorn {args.workers}×{args.threads} threads ({args.worker_class}) · {os.cpu_count()} CPUs · "
        f"{'kept connections' if args.keep_alive else 'a connection per request'}"
    )
    print(
        f"gunicorn CPU {1000 * app_cpu / total:.1f} ms per request · client {1000 * client_cpu / total:.1f} ms · "
        f"load average {load_before:.1f} → {load_after:.1f}"
    )
    print(f"{'page':<20} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8}")
    summary = []
    for kind, values in latencies.items():
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        summary.append((p50, p95))
        print(f"{kind:<20} {len(values):>8} {p50:>8.1f} {p95:>8.1f} {max(values):>8.1f} {queries[kind]:>8}")
    worst_p50 = max(p50 for p50, _ in summary)
    worst_p95 = max(p95 for _, p95 in summary)
    print(f"pages={len(latencies)} p50_ms={worst_p50:.1f} p95_ms={worst_p95:.1f} max_queries={max(queries.values())}")


if __name__ == "__main__":
    main()
