"""The suite runs on the real services when they are configured (.ci/run configures them)."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from posture.models import WorkerHeartbeat


@pytest.mark.django_db
def test_suite_runs_on_postgresql_when_a_database_url_is_given() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres") or os.environ.get("ARC_REQUIRE_SERVICES") == "1":
        assert connection.vendor == "postgresql"
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            assert cursor.fetchone()[0]
    else:
        assert connection.vendor == "sqlite"


@pytest.mark.services
def test_a_task_travels_through_redis_to_a_real_worker_and_lands_in_postgresql(start_worker, celery_live) -> None:
    from posture.tasks import worker_heartbeat

    worker = start_worker(queues=("default",))
    worker_heartbeat.apply_async(kwargs={"queue": "default"}, queue="default")
    deadline = time.monotonic() + 30
    while not WorkerHeartbeat.objects.filter(queue="default").exists():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    beat = WorkerHeartbeat.objects.get(queue="default")
    assert beat.hostname.startswith("testworker0@")
    assert "posture.worker_heartbeat" in worker.log()
