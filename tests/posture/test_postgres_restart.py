"""The fault matrix's PostgreSQL case, end to end and black-box: a private PostgreSQL cluster is
really restarted (`pg_ctl restart -m fast`) while production-shaped processes scan through it:
collect and default workers, beat with its database schedule, and `manage.py scan --wait`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azure_emulator import cloud_env
from posture.models import Cluster, ControlResult, FleetSnapshot, Scan
from tests.conftest import unavailable
from tests.posture.faults import RECOVERY_BOUND, wait_for, worker_env
from tests.posture.private_postgres import PrivatePostgres

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = 300  # six subscriptions, one batch each


@pytest.fixture
def private_postgres() -> Any:
    if why := PrivatePostgres.available():
        unavailable(why)
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=RECOVERY_BOUND)
    assert done.returncode == 0, f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def test_a_real_postgresql_restart_mid_scan_is_ridden_out_by_workers_beat_and_scan_wait(
    start_worker: Any, make_emulator: Any, private_postgres: PrivatePostgres, private_redis: Any, tmp_path: Path
) -> None:
    pg = private_postgres
    emulator = make_emulator(clusters=CLUSTERS)
    emulator.faults.slow("arg", seconds=0.7, count=200)  # batches take seconds: the restart lands mid-scan
    env = worker_env(
        emulator,
        DATABASE_URL=pg.url(),
        CELERY_BROKER_URL=private_redis.url,
        REDIS_URL=private_redis.url,
        ARC_SCAN_BATCH_SUBSCRIPTIONS="1",
        ARC_CLOUDS="emulator",
        ARC_CLOUDS_FILE="",
        **cloud_env(emulator.summary(), "emulator"),
    )
    process_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "web.settings.base", "ARC_VAR_DIR": str(tmp_path / "var"), **env}
    manage(process_env, "migrate", "--noinput", "-v0")
    subscriptions = [arg for sub in sorted(emulator.fleet.subscriptions) for arg in ("--subscription", sub)]
    manage(process_env, "scope", "add", "restart", "--tenant-id", emulator.tenant_id, "--cloud", "emulator", *subscriptions)

    collect = start_worker(queues=("collect",), extra_env=env, name="collect", concurrency=2)
    default = start_worker(queues=("default",), extra_env=env, name="default", concurrency=2)
    beat_log = tmp_path / "beat.log"
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "web", "beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"],
        cwd=tmp_path,
        env={**process_env, "PYTHONPATH": str(ROOT)},
        stdout=beat_log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def logs() -> str:
        return "\n".join(
            [f"COLLECT:\n{collect.log()[-5000:]}", f"DEFAULT:\n{default.log()[-5000:]}", f"BEAT:\n{beat_log.read_text()[-3000:]}"]
        )

    try:
        waiting = subprocess.Popen(
            [sys.executable, "manage.py", "scan", "--scope", "restart", "--wait", "--timeout", str(RECOVERY_BOUND)],
            cwd=ROOT,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        scans = Scan._meta.db_table
        wait_for(lambda: pg.count(f"SELECT coalesce(max(batches_done), 0) FROM {scans}") >= 1, 90, logs)  # noqa: S608
        assert pg.count(f"SELECT count(*) FROM {scans} WHERE state IN ('pending', 'running')") == 1  # noqa: S608
        pg.restart()

        output, _ = waiting.communicate(timeout=RECOVERY_BOUND + 30)
        assert waiting.returncode == 0, output + logs()
        assert f"succeeded, {CLUSTERS} clusters" in output
        assert pg.count(f"SELECT count(*) FROM {scans}") == 1  # noqa: S608
        snapshots = f"SELECT count(*) FROM {FleetSnapshot._meta.db_table}"  # noqa: S608
        assert pg.count(snapshots) == 1
        assert pg.count(f"SELECT count(*) FROM {Cluster._meta.db_table} WHERE removed_at IS NULL") == CLUSTERS  # noqa: S608
        assert pg.count(f"SELECT count(DISTINCT cluster_id) FROM {ControlResult._meta.db_table}") == CLUSTERS  # noqa: S608

        # Everything still serves: a second scan through the restarted server runs to the end.
        assert f"succeeded, {CLUSTERS} clusters" in manage(process_env, "scan", "--scope", "restart", "--wait")
        assert pg.count(snapshots) == 2
        assert collect.process.poll() is None and default.process.poll() is None and beat.poll() is None, logs()
    finally:
        if beat.poll() is None:
            os.killpg(beat.pid, 15)
            beat.wait(timeout=20)
