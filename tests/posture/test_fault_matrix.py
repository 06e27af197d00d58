"""The fault matrix: scans run by real Celery workers through Redis on PostgreSQL, against the
emulator, while a worker dies, PostgreSQL goes away or Redis restarts. Each scan must end within
the recovery bound with exact counts and one snapshot, and the workers must go on serving.

Faults are made on private instances only: a redis-server the test starts (and restarts), and a
TCP proxy in front of the shared PostgreSQL that the test cuts (see tests/posture/faults.py).
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from django.db import connection

from posture.models import Cluster, ControlResult, FleetSnapshot, Scan
from posture.scans import watchdog
from posture.scans.request import scan_request
from tests.conftest import database_url_for_subprocess
from tests.posture.faults import RECOVERY_BOUND, CuttableProxy, publishing_to, wait_for, worker_env

pytestmark = [pytest.mark.services, pytest.mark.slow]

CLUSTERS = 300  # six subscriptions, so several batches


def assert_complete(scan: Scan, emulator: Any, *, batches: int = 2) -> None:
    """Succeeded, with every cluster and its results, one snapshot, and at least `batches` batches."""
    scan.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    expected = emulator.fleet.cluster_count
    assert Cluster.objects.filter(scope=scan.scope, removed_at__isnull=True).count() == expected == scan.clusters
    per_cluster = ControlResult.objects.filter(cluster__scope=scan.scope).values("cluster_id").distinct().count()
    assert per_cluster == expected
    assert FleetSnapshot.objects.filter(scan=scan).count() == 1
    assert FleetSnapshot.objects.get(scan=scan).clusters == expected
    assert scan.batches_done == scan.batches_total >= batches


def results_blocked() -> bool:
    """An evaluation waits on the test's lock of the results table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE NOT l.granted AND c.relname = %s AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [ControlResult._meta.db_table],
        )
        return cursor.fetchone()[0] > 0


def rescan_completes(scope: Any, emulator: Any, logs: Any, *, batches: int = 2) -> None:
    """The workers still serve: a second scan runs to the end."""
    again, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    assert created
    wait_for(lambda: Scan.objects.get(pk=again.pk).is_finished, RECOVERY_BOUND, logs)
    assert_complete(again, emulator, batches=batches)


def test_a_redis_restart_mid_scan_leaves_the_workers_serving_and_the_scan_completes(
    start_worker, celery_live, make_emulator, emulator_scope, private_redis
) -> None:
    emulator = make_emulator(clusters=CLUSTERS)
    scope = emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions))
    emulator.faults.slow("arg", seconds=0.7, count=200)  # batches take seconds: the fault lands mid-scan
    env = worker_env(emulator, CELERY_BROKER_URL=private_redis.url, REDIS_URL=private_redis.url, ARC_SCAN_BATCH_SUBSCRIPTIONS="1")
    # As in production (docker-compose.yml): two processes each, gossip and mingle on.
    collect = start_worker(queues=("collect",), extra_env=env, name="collect", concurrency=2, gossip=True)
    default = start_worker(queues=("default",), extra_env=env, name="default", concurrency=2, gossip=True)

    def logs() -> str:
        return "COLLECT:\n" + collect.log()[-6000:] + "\nDEFAULT:\n" + default.log()[-6000:]

    with publishing_to(private_redis.url):
        scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
        wait_for(lambda: Scan.objects.get(pk=scan.pk).batches_done >= 1, 60, logs)
        private_redis.restart(down_seconds=3)
        # Redis lost its queues with the restart: the watchdog (beat, in production) hands the
        # orphaned work out again.
        run_watchdog_until_finished(scan, logs, [collect, default])
        assert_complete(scan, emulator)
        assert "Unrecoverable error" not in collect.log() + default.log()
        rescan_completes(scope, emulator, logs)


def run_watchdog_until_finished(scan: Scan, logs: Any, workers: list[Any]) -> None:
    """Beat's part: the watchdog every second (its default tick is ARC_WATCHDOG_INTERVAL_SECONDS)."""
    deadline = time.monotonic() + RECOVERY_BOUND
    while not Scan.objects.get(pk=scan.pk).is_finished:
        assert time.monotonic() < deadline, logs()
        assert all(w.process.poll() is None for w in workers), logs()
        watchdog.watchdog()
        time.sleep(1)


def test_a_default_worker_killed_during_evaluation_leaves_no_lock_behind(start_worker, celery_live, make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=CLUSTERS)
    scope = emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions))
    env = worker_env(emulator, ARC_SCAN_BATCH_SUBSCRIPTIONS="1")
    collect = start_worker(queues=("collect",), extra_env=env, name="collect")
    doomed = start_worker(queues=("default",), extra_env=env, name="doomed")

    # Results cannot be written while this session holds the table: the first batch's evaluation
    # (on the default worker, holding the scope's evaluation lock) stops in its write.
    blocker = psycopg.connect(database_url_for_subprocess())
    try:
        blocker.execute(f"LOCK TABLE {ControlResult._meta.db_table} IN SHARE MODE")
        scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
        wait_for(results_blocked, 120, lambda: doomed.log()[-4000:])
        doomed.kill()
    finally:
        blocker.close()

    survivor = start_worker(queues=("default",), extra_env=env, name="survivor")

    def logs() -> str:
        return "COLLECT:\n" + collect.log()[-6000:] + "\nSURVIVOR:\n" + survivor.log()[-4000:]

    run_watchdog_until_finished(scan, logs, [collect, survivor])
    assert_complete(scan, emulator)
    rescan_completes(scope, emulator, logs)


def test_a_worker_killed_in_the_scans_final_evaluation_leaves_no_lock_behind(
    start_worker, celery_live, make_emulator, emulator_scope
) -> None:
    """The case that left scans `evaluating` for half an hour: the final pass (one batch, so no
    earlier batch evaluation) stops in its result writes, its worker is SIGKILLed with the scope's
    lock and the scan's `evaluating` state held, and another worker must take the finish over."""
    emulator = make_emulator(clusters=CLUSTERS)
    scope = emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions))
    env = worker_env(emulator, ARC_SCAN_BATCH_SUBSCRIPTIONS="100")
    doomed = start_worker(queues=("default", "collect"), extra_env=env, name="doomed")

    blocker = psycopg.connect(database_url_for_subprocess())
    try:
        blocker.execute(f"LOCK TABLE {ControlResult._meta.db_table} IN SHARE MODE")
        scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
        wait_for(lambda: Scan.objects.get(pk=scan.pk).state == Scan.State.EVALUATING and results_blocked(), 120, doomed.log)
        doomed.kill()
    finally:
        blocker.close()
    assert Scan.objects.get(pk=scan.pk).state == Scan.State.EVALUATING

    survivor = start_worker(queues=("default", "collect"), extra_env=env, name="survivor")
    run_watchdog_until_finished(scan, survivor.log, [survivor])
    assert_complete(scan, emulator, batches=1)
    rescan_completes(scope, emulator, survivor.log, batches=1)


def test_a_postgresql_restart_mid_scan_is_recovered_from(start_worker, celery_live, make_emulator, emulator_scope) -> None:
    """The workers reach PostgreSQL through a TCP proxy the test cuts: every connection closed,
    new ones refused for a few seconds, and every backend the workers had terminated (what clients
    see while the server restarts). The shared server itself is never restarted."""
    emulator = make_emulator(clusters=CLUSTERS)
    scope = emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions))
    emulator.faults.slow("arg", seconds=0.7, count=200)  # batches take seconds: the cut lands mid-scan
    settings_dict = connection.settings_dict
    proxy = CuttableProxy((settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)))
    through_proxy = database_url_for_subprocess().replace(f":{settings_dict['PORT'] or 5432}/", f":{proxy.port}/")
    env = worker_env(emulator, ARC_SCAN_BATCH_SUBSCRIPTIONS="1", DATABASE_URL=through_proxy)
    collect = start_worker(queues=("collect",), extra_env=env, name="collect")
    default = start_worker(queues=("default",), extra_env=env, name="default")

    def logs() -> str:
        return "COLLECT:\n" + collect.log()[-6000:] + "\nDEFAULT:\n" + default.log()[-6000:]

    try:
        scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
        wait_for(lambda: Scan.objects.get(pk=scan.pk).batches_done >= 1, 90, logs)
        proxy.cut(refuse_seconds=5)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        run_watchdog_until_finished(scan, logs, [collect, default])
        assert_complete(scan, emulator)
        rescan_completes(scope, emulator, logs)
    finally:
        proxy.close()
