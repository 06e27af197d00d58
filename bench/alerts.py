"""Alerts on PostgreSQL and Redis: planning a scan's notifications, then sending every one of them.

    python bench/alerts.py --clusters 50000 [--regress 0.05] [--subscribers 100] [--concurrency 2] [--keep-fleet]

Setup, not timed: the emulator's fleet is collected and evaluated by a first scan (in-process,
quota off); the emulator then makes `--regress` of the fleet worse, always the same clusters
(azure_emulator/fleet/worsen.py: the private path to Azure switched off, so ARC-NET-01 and often
ARC-PL-01 go from pass to fail), and a second scan stores the change events as every scan does.
The rules and their subscribers are created after that scan, so that its own close plans nothing.
`--keep-fleet` skips this setup and reuses the database a previous run left (its rules, users and
notifications are deleted first).

- `plan_s`: posture.alerts.planning.plan_scan_alerts(second scan) inside a transaction, as
  posture/scans/finish.py calls it when the scan closes (the rows written, not yet committed);
- `send_per_s`: the notifications planned ÷ the seconds from the commit (which queues their
  sends, the workers being up: they answered a ping first) until every one is final (sent, failed
  or unconfirmed). They are sent ten per task message by posture.send_notifications (each row
  claimed on its own) in real Celery workers (`--concurrency` processes on the default
  queue) to an aiosmtpd server on loopback, in this process, that accepts everything.

The last line reads `plan_s=… notifications=… send_per_s=… bench_peak_rss_mb=… worker_peak_rss_mb=…`
(bench: this process, which plans; worker: the largest worker process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DEFAULT_BROKER, Emulator, Worker, add_scope, app_env, manage, reset_database  # noqa: E402

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/arc_alerts_bench"
FINAL = ("sent", "failed", "unconfirmed")


class Catcher:
    """aiosmtpd's handler: accepts every message and counts them."""

    def __init__(self) -> None:
        self.received = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received += 1
        return "250 2.0.0 Ok: queued"


def worsen(emulator: Emulator, clusters: int) -> int:
    request = urllib.request.Request(  # noqa: S310 - the emulator's control API, on loopback
        emulator.info["base_url"] + "/_emu/fleet/worsen",
        data=json.dumps({"clusters": clusters}).encode(),
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=emulator.info["ca_file"])
    with urllib.request.urlopen(request, timeout=120, context=context) as answer:  # noqa: S310
        return len(json.load(answer)["clusters"])


def timed_scan(env: dict[str, str], label: str) -> None:
    began = time.monotonic()
    manage(env, "scan", "--scope", "bench", "--wait")
    print(f"{label} in {time.monotonic() - began:.0f} s (setup)", flush=True)


def build_fleet(args: argparse.Namespace, work: Path) -> dict[str, str]:
    """Two scans of the emulator's fleet, the second after it got worse; the app's env."""
    reset_database(args.database)
    emulator = Emulator(args.clusters, args.seed, "off", work / "emulator")
    info = emulator.info
    env = app_env(args.database, "", AZURE_CLIENT_ID=info["client_id"], AZURE_CLIENT_SECRET=info["client_secret"])
    env.pop("CELERY_BROKER_URL")  # the scans run in-process
    try:
        add_scope(env, info)
        timed_scan(env, f"first scan: {args.clusters:,} clusters collected and evaluated")
        changed = worsen(emulator, int(args.clusters * args.regress))
        timed_scan(env, f"second scan, after {changed:,} clusters lost their private path")
    finally:
        emulator.stop()
    return env


def add_rules(subscribers: int) -> None:
    """A few rules, as a security team would set them up, and `subscribers` viewers."""
    from django.contrib.auth import get_user_model

    from posture.alerts.rules import rule_create, subscribe
    from posture.models import AlertRule, Scope
    from posture.roles import assign_role

    users = []
    for index in range(subscribers):
        user = get_user_model().objects.create(username=f"reader{index:04d}", email=f"reader{index:04d}@example.test")
        assign_role(user, "viewer")
        users.append(user)
    scope = Scope.objects.get(name="bench")

    def rule(name: str, readers: list[Any], **fields: Any) -> None:
        created = rule_create(user=None, name=name, kind=AlertRule.Kind.CONTROL_REGRESSION, **fields)
        for user in readers:
            subscribe(user=user, rule=created)

    rule("Medium or more", users, params={"min_severity": "medium"}, addresses=["secops@example.test"])
    rule("High only", users[::2], params={"min_severity": "high"})
    rule("Private path", users[1::2], controls=["ARC-NET-01", "ARC-PL-01"], addresses=["network@example.test"])
    rule("Bench scope, low or more", users[::5], scopes=[scope.pk], addresses=["bench@example.test"])


def wait_until_final(ids: list[str], timeout: float) -> float:
    from posture.models import Notification

    began = time.monotonic()
    while Notification.objects.filter(pk__in=ids).exclude(state__in=FINAL).exists():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"not every notification was final after {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - began


def wait_for_worker(timeout: float) -> float:
    """Until a worker answers a ping: the sends are timed from a worker that is up (planning used
    to take long enough to hide its start; now it does not)."""
    from web.celery import app

    began = time.monotonic()
    while not app.control.ping(timeout=0.5):
        if time.monotonic() - began > timeout:
            raise SystemExit(f"no worker answered after {timeout:.0f} s")
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--regress", type=float, default=0.05, help="share of the fleet made worse before the second scan")
    parser.add_argument("--subscribers", type=int, default=100, help="viewers subscribed to the rules")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes sending (the machine has 2 cores)")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--broker", default=DEFAULT_BROKER)
    parser.add_argument("--keep-fleet", action="store_true", help="reuse the fleet and scans a previous run left in --database")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    env = app_env(args.database, "") if args.keep_fleet else build_fleet(args, work)

    from aiosmtpd.controller import Controller

    catcher = Catcher()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(catcher, hostname="127.0.0.1", port=port)
    smtp.start()
    mail = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port), "EMAIL_USE_TLS": "false", "SITE_URL": "https://arc.example.test"}
    env = {**env, "CELERY_BROKER_URL": args.broker, **mail}
    os.environ.update(env)
    import django

    django.setup()
    import redis
    from django.db import connection, transaction
    from django.db.models import Count

    from posture.alerts.planning import plan_scan_alerts
    from posture.models import ChangeEvent, Notification, Scan

    redis.Redis.from_url(args.broker).flushdb()
    if args.keep_fleet:
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # the kept database may predate this code's migrations

        from posture.models import AlertRule, AlertTrigger, DigestEntry

        DigestEntry.objects.all().delete()
        Notification.objects.all().delete()
        AlertTrigger.objects.all().delete()
        AlertRule.objects.all().delete()
        get_user_model().objects.filter(username__startswith="reader").delete()
    add_rules(args.subscribers)
    with connection.cursor() as cursor:  # what autovacuum does after a scan's bulk writes
        cursor.execute("VACUUM ANALYZE")
    scan = Scan.objects.order_by("-created_at").first()
    assert scan is not None
    events = ChangeEvent.objects.filter(scan=scan)
    print(
        f"second scan: {events.count():,} change events on {events.values('cluster').distinct().count():,} clusters; "
        f"{args.subscribers} subscribers, 4 rules, {args.concurrency} worker processes",
        flush=True,
    )
    worker = Worker(env, args.concurrency, work / "worker-default.log", queues="default")
    try:
        print(f"worker up {wait_for_worker(120) + 3:.1f} s after its start (setup)", flush=True)
        with transaction.atomic():
            began = time.monotonic()
            ids = plan_scan_alerts(scan)
            plan_s = time.monotonic() - began
            committing = time.monotonic()
        queue_s = time.monotonic() - committing  # the commit queued the sends
        send_s = queue_s + wait_until_final(ids, timeout=600)
    finally:
        worker.stop()
        smtp.stop()
    states = dict(Notification.objects.values_list("state").annotate(n=Count("pk")).order_by())
    rows = Notification.objects.filter(pk__in=ids).order_by()
    print(f"notifications by state: {states}; messages the server took: {catcher.received}", flush=True)
    biggest = max(rows.values_list("item_count", flat=True), default=0)
    print(f"largest notification: {biggest:,} changes; commit and queueing {queue_s:.2f} s; worker log: {worker.log}", flush=True)
    bench_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"plan_s={plan_s:.2f} notifications={len(ids)} send_per_s={len(ids) / send_s:.1f} "
        f"bench_peak_rss_mb={bench_mb:.0f} worker_peak_rss_mb={worker.peak_process_mb:.0f}"
    )


if __name__ == "__main__":
    main()
