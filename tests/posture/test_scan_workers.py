"""Scans run by real Celery worker processes through Redis, on PostgreSQL, against the emulator."""

from __future__ import annotations

import time

import pytest

from posture.models import Cluster, FleetSnapshot, QueryEvidence, Scan, ScanBatch
from posture.scans import batches, watchdog
from posture.scans.request import scan_request
from tests.posture.faults import wait_for, worker_env

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_two_workers_share_one_quota_without_a_single_429(start_worker, celery_live, make_emulator, emulator_scope, settings) -> None:
    emulator = make_emulator(clusters=250, quota=(6, 2.0))  # five subscriptions
    scope = emulator_scope(emulator)
    env = worker_env(emulator, ARC_SCAN_BATCH_SUBSCRIPTIONS="1")
    workers = [start_worker(extra_env=env, name="quota-a"), start_worker(extra_env=env, name="quota-b")]
    scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    wait_for(lambda: Scan.objects.get(pk=scan.pk).is_finished, 180, lambda: workers[0].log()[-3000:] + workers[1].log()[-3000:])
    scan.refresh_from_db()
    stats = emulator.stats()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert stats["responses_429"] == 0 and stats["arg_throttled"] == 0
    assert stats["arg_accepted"] > 6 * 3  # the quota really bound the scan
    assert scan.quota_wait_seconds > 0
    assert Cluster.objects.count() == 250
    assert all("posture.collect_batch" in w.log() for w in workers), "both workers took batches"


def test_a_worker_killed_mid_batch_is_replaced_and_the_scan_completes_once(
    start_worker, celery_live, make_emulator, emulator_scope, settings
) -> None:
    settings.ARC_WATCHDOG_STALE_SECONDS = 5
    emulator = make_emulator(clusters=150)
    scope = emulator_scope(emulator, subscriptions=sorted(emulator.fleet.subscriptions))
    # The policy-states query is slow, so the batch is surely mid-way when the worker dies.
    emulator.faults.slow("arg", seconds=2.0, count=20, query="policystates")
    env = worker_env(emulator, ARC_WATCHDOG_STALE_SECONDS="5", ARC_PROGRESS_INTERVAL_SECONDS="0.5")
    doomed = start_worker(extra_env=env, name="doomed")
    scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    wait_for(lambda: ScanBatch.objects.filter(scan=scan, state=ScanBatch.State.RUNNING, pages__gt=0).exists(), 60, doomed.log)
    doomed.kill()
    batch = ScanBatch.objects.get(scan=scan)
    assert batch.state == ScanBatch.State.RUNNING and batch.attempts == 1
    assert not Cluster.objects.exists()  # nothing of the half-done batch was written

    survivor = start_worker(extra_env=env, name="survivor")
    time.sleep(5.5)  # let the dead worker's heartbeat go stale
    counts = watchdog.watchdog()
    assert counts["batches_requeued"] == 1
    wait_for(lambda: Scan.objects.get(pk=scan.pk).is_finished, 120, survivor.log)

    scan.refresh_from_db()
    batch.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert batch.state == ScanBatch.State.DONE and batch.attempts == 2
    assert scan.batches_done == scan.batches_total == 1
    assert Cluster.objects.count() == 150 == scan.clusters
    evidence = [(e.name, tuple(e.scopes["subscriptions"])) for e in QueryEvidence.objects.filter(batch=batch)]
    assert len(evidence) == len(set(evidence)), "the killed attempt left no evidence behind"
    assert sum(e.rows for e in QueryEvidence.objects.filter(batch=batch, name="clusters")) == 150
    assert FleetSnapshot.objects.filter(scan=scan).count() == 1
    # The original message may still be redelivered later: it finds the batch done and does nothing.
    batches.collect_batch(batch.pk)
    assert QueryEvidence.objects.filter(batch=batch).count() == len(evidence)
