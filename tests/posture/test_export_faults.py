"""Faults of export builds run by real Celery workers through Redis on PostgreSQL: a worker killed
in the middle of a bundle leaves no half-written file, in storage or in its temporary directory,
and the watchdog's hand-out yields exactly one finished bundle that verifies; a build message
delivered twice makes one file.

The build is held at a known point without any hook in the code: the test locks the raw-responses
table, which the bundle reads after its findings, scorecards and reports are written (as the fault
matrix locks the results table). The worker's temporary files go to a directory of the test's
own (TMPDIR), its storage is the local file system under the test's ARC_VAR_DIR.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.contrib.auth import get_user_model
from django.db import connection

from posture import task_queue
from posture.exports import jobs
from posture.exports.filters import ExportFilters
from posture.exports.verify import verify_bundle
from posture.models import Export, QueryEvidence, Scope
from tests.conftest import database_url_for_subprocess, make_user
from tests.posture.faults import RECOVERY_BOUND, wait_for

pytestmark = [pytest.mark.services, pytest.mark.slow]

STALE_SECONDS = 5  # the least the settings allow with a heartbeat every second


@pytest.fixture
def worker_setup(tmp_path: Path, settings: Any) -> dict[str, Any]:
    """The workers' environment: local storage under tmp_path/var, temporary files in
    tmp_path/scratch, a signing key of the test's own, and a quick heartbeat and watchdog."""
    (tmp_path / "scratch").mkdir()
    key = os.urandom(32)
    settings.ARC_WATCHDOG_STALE_SECONDS = STALE_SECONDS  # the watchdog runs in this process
    env = {
        "ARC_EXPORT_STORAGE": "local",
        "ARC_VAR_DIR": str(tmp_path / "var"),
        "TMPDIR": str(tmp_path / "scratch"),
        "EVIDENCE_SIGNING_KEY": base64.b64encode(key).decode(),
        "ARC_PROGRESS_INTERVAL_SECONDS": "1",
        "ARC_WATCHDOG_STALE_SECONDS": str(STALE_SECONDS),
    }
    public = Ed25519PrivateKey.from_private_bytes(key).public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {"env": env, "store": tmp_path / "var" / "exports", "scratch": tmp_path / "scratch", "public_key": public}


def stored(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file())


def request_bundle() -> Export:
    user = get_user_model().objects.filter(username="erin").first() or make_user("erin", "admin")
    # No transaction is open (transactional test): the message goes to Redis at once.
    return jobs.request_export(user=user, kind="bundle", fmt="zip", filters=ExportFilters())


@contextlib.contextmanager
def raw_responses_locked() -> Iterator[None]:
    """Builds wait where the bundle reads the stored Azure responses, its temp file half written."""
    blocker = psycopg.connect(database_url_for_subprocess())
    try:
        blocker.execute(f"LOCK TABLE {QueryEvidence._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        blocker.close()


def waiting_on_raw_responses() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE NOT l.granted AND c.relname = %s AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [QueryEvidence._meta.db_table],
        )
        return int(cursor.fetchone()[0])


def scratch_holder(worker: Any, scratch: Path) -> int | None:
    """The pool process of `worker` holding an unnamed file open in `scratch` (the build's temp
    file: O_TMPFILE, which /proc shows as "#<inode> (deleted)")."""
    pid = worker.process.pid
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{child}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith(f"{scratch}/") and target.endswith(" (deleted)"):
                    return int(child)
    return None


def build_paused(export: Export) -> bool:
    export.refresh_from_db()
    return export.state == Export.State.RUNNING and export.progress_done > 0 and waiting_on_raw_responses() > 0


def finished(export: Export) -> bool:
    export.refresh_from_db()
    return export.state in (Export.State.SUCCEEDED, Export.State.FAILED)


def assert_one_verified_bundle(export: Export, setup: dict[str, Any], *, attempts: int) -> None:
    export.refresh_from_db()
    assert export.state == Export.State.SUCCEEDED, export.error
    assert export.attempts == attempts
    path = setup["store"] / export.file_name
    assert export.file_name == jobs.storage_name(export, export.claimed_at)
    assert stored(setup["store"]) == [path]
    content = path.read_bytes()
    assert (hashlib.sha256(content).hexdigest(), len(content)) == (export.sha256, export.size)
    assert export.progress_done == export.progress_total > 0
    report = verify_bundle(path, public_key_pem=setup["public_key"])
    assert report.ok, report.lines()
    assert report.files_checked > 0
    assert stored(setup["scratch"]) == []


def test_a_worker_killed_mid_bundle_leaves_no_half_written_file_and_one_bundle_is_finished(
    start_worker, celery_live, small_fleet: Scope, worker_setup: dict[str, Any]
) -> None:
    setup = worker_setup
    doomed = start_worker(queues=("default",), extra_env=setup["env"], name="doomed")
    with raw_responses_locked():
        export = request_bundle()
        wait_for(lambda: build_paused(export), RECOVERY_BOUND, lambda: doomed.log()[-4000:])
        # The child doing the work writes the bundle into an unnamed file of the scratch directory.
        builder = scratch_holder(doomed, setup["scratch"])
        assert builder is not None, doomed.log()[-4000:]
        progress = (export.progress_done, export.progress_total)
        assert 0 < progress[0] < progress[1]
        os.kill(builder, signal.SIGKILL)
        doomed.kill()  # and the rest of that worker: a new one takes over
        # Nothing in storage, no temp file left (Celery's pool keeps an empty pymp-* folder there).
        assert stored(setup["store"]) == [] and stored(setup["scratch"]) == []
    export.refresh_from_db()
    assert (export.state, export.attempts, export.file_name) == (Export.State.RUNNING, 1, "")

    survivor = start_worker(queues=("default",), extra_env=setup["env"], name="survivor")
    watchdog = task_queue.registered_task(task_queue.WATCHDOG)  # beat's task, run here every second
    requeued = 0
    deadline = time.monotonic() + RECOVERY_BOUND
    while not finished(export):
        assert time.monotonic() < deadline and survivor.process.poll() is None, survivor.log()[-4000:]
        requeued += watchdog.apply().get()["exports_requeued"]
        time.sleep(1)
    assert requeued == 1  # handed out once, and the live rebuild was left alone
    assert_one_verified_bundle(export, setup, attempts=2)


def test_a_bundle_message_delivered_twice_makes_one_file(
    start_worker, celery_live, small_fleet: Scope, worker_setup: dict[str, Any]
) -> None:
    setup = worker_setup
    worker = start_worker(queues=("default",), extra_env=setup["env"], name="twice", concurrency=2)
    with raw_responses_locked():
        export = request_bundle()
        wait_for(lambda: build_paused(export), RECOVERY_BOUND, lambda: worker.log()[-4000:])
        task_queue.enqueue(task_queue.BUILD_EXPORT, export_id=str(export.pk))  # the same message again
        # The second delivery is taken by the idle pool process, finds nothing to claim and ends.
        wait_for(lambda: worker.log().count("succeeded in") == 1, 60, lambda: worker.log()[-4000:])
        export.refresh_from_db()
        assert (export.state, export.attempts) == (Export.State.RUNNING, 1)
        assert stored(setup["store"]) == []
    wait_for(lambda: finished(export), RECOVERY_BOUND, lambda: worker.log()[-4000:])
    assert_one_verified_bundle(export, setup, attempts=1)
    assert worker.log().count("succeeded in") == 2
