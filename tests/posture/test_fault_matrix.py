"""The fault matrix: scans run by real Celery workers through Redis on PostgreSQL, against the
emulator, while a worker dies, PostgreSQL goes away or Redis restarts. Each scan must end within
the recovery bound with exact counts and one snapshot, and the workers must go on serving.

Faults are made on private instances only: a redis-server the test starts (and restarts), and a
TCP proxy in front of the shared PostgreSQL that the test cuts (see tests/posture/faults.py).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from posture import pipeline
from posture.models import Cluster, ControlResult, FleetSnapshot, Scan
from posture.scanning import scan_request
from tests.posture.faults import PrivateRedis, publishing_to, wait_for, worker_env

pytestmark = [pytest.mark.services, pytest.mark.slow]

CLUSTERS = 300  # six subscriptions, so several batches
# A generous wait limit, not a timed assertion: with the defaults a dead worker is noticed within
# about a minute (ARC_WATCHDOG_STALE_SECONDS plus ARC_WATCHDOG_INTERVAL_SECONDS).
RECOVERY_BOUND = 240


@pytest.fixture
def private_redis(tmp_path: Any) -> Any:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def assert_complete(scan: Scan, emulator: Any) -> None:
    scan.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    expected = emulator.fleet.cluster_count
    assert Cluster.objects.filter(scope=scan.scope, removed_at__isnull=True).count() == expected == scan.clusters
    per_cluster = ControlResult.objects.filter(cluster__scope=scan.scope).values("cluster_id").distinct().count()
    assert per_cluster == expected
    assert FleetSnapshot.objects.filter(scan=scan).count() == 1
    assert FleetSnapshot.objects.get(scan=scan).clusters == expected
    assert scan.batches_done == scan.batches_total > 1


def rescan_completes(scope: Any, emulator: Any, logs: Any) -> None:
    """The workers still serve: a second scan runs to the end."""
    again, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    assert created
    wait_for(lambda: Scan.objects.get(pk=again.pk).is_finished, RECOVERY_BOUND, logs)
    assert_complete(again, emulator)


def test_a_redis_restart_mid_scan_leaves_the_workers_serving_and_the_scan_completes(
    start_worker, celery_live, make_emulator, emulator_scope, private_redis, settings
) -> None:
    settings.ARC_WATCHDOG_STALE_SECONDS = 45
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
        deadline = time.monotonic() + RECOVERY_BOUND
        while not Scan.objects.get(pk=scan.pk).is_finished:
            assert time.monotonic() < deadline, logs()
            assert collect.process.poll() is None and default.process.poll() is None, logs()
            pipeline.watchdog()
            time.sleep(1)
        assert_complete(scan, emulator)
        assert "Unrecoverable error" not in collect.log() + default.log()
        rescan_completes(scope, emulator, logs)
