"""The watchdog hands out only work whose worker is gone: a start still listing subscriptions,
however long Azure keeps it waiting, is alive and is left alone."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections

from posture.models import Scan, ScanBatch
from posture.scans import watchdog
from posture.scans.start import start_scan

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_start_listing_subscriptions_longer_than_the_stale_limit_is_not_started_twice(
    postgres: None, make_emulator: Any, emulator_scope: Any, settings: Any
) -> None:
    settings.ARC_WATCHDOG_STALE_SECONDS = 1
    settings.ARC_PROGRESS_INTERVAL_SECONDS = 0.2
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator)  # the whole tenant: its subscriptions come from the listing
    emulator.faults.slow("arg", seconds=3.0, query="resourcecontainers")
    scan = Scan.objects.create(scope=scope, trigger=Scan.Trigger.COMMAND)

    def start() -> None:
        try:
            start_scan(str(scan.pk))
        finally:
            connections.close_all()

    starter = threading.Thread(target=start)
    starter.start()
    time.sleep(2.0)  # twice the stale limit into the slow listing
    counts = watchdog.watchdog()
    starter.join(timeout=60)

    assert counts["scans_restarted"] == 0
    scan.refresh_from_db()
    # Tasks run in-process here: the one start fanned out and the scan went on to its end.
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert ScanBatch.objects.filter(scan=scan).count() == scan.batches_total > 0
