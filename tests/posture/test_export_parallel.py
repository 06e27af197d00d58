"""Findings exports written by two processes from one database snapshot
(posture/exports/parallel.py): the same bytes as one process, from the CLI's path and from a
real Celery prefork worker; a commit landing once the snapshot is taken changes neither part; a
part process that dies fails the export clearly and leaves no file behind."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth import get_user_model

from posture.exports import jobs, parallel
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.run import export_to_file
from posture.models import ControlResult, Export
from tests.conftest import database_url_for_subprocess, make_user
from tests.posture.exports_fleet import FLEET_CLUSTERS, ScannedFleet, build, read_csv, scan_fleet
from tests.posture.faults import RECOVERY_BOUND, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def fleet(postgres: None, make_emulator: Any, emulator_scope: Any, settings: Any) -> ScannedFleet:
    settings.ARC_EXPORT_PARALLEL_MIN_ROWS = 2
    return scan_fleet(make_emulator, emulator_scope)


def in_one_process(settings: Any, kind: str, fmt: str, **filters: Any) -> bytes:
    settings.ARC_EXPORT_TWO_PROCESSES = False
    data, _ = build(kind, fmt, **filters)
    settings.ARC_EXPORT_TWO_PROCESSES = True
    return data


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The part processes started."""
    started: list[subprocess.Popen[bytes]] = []
    start = parallel.start_part

    def recorded(request: dict[str, Any]) -> subprocess.Popen[bytes]:
        started.append(start(request))
        return started[-1]

    monkeypatch.setattr(parallel, "start_part", recorded)
    return started


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_in_two_processes_holds_the_same_bytes_as_one_process(fleet: ScannedFleet, settings: Any, parts: list, fmt: str) -> None:
    data, export = build("findings", fmt)
    assert len(parts) == 1 and parts[0].returncode == 0
    assert data == in_one_process(settings, "findings", fmt)
    assert export.rows == len(data.splitlines()) - (fmt == "csv") > FLEET_CLUSTERS
    assert export.sha256 == hashlib.sha256(data).hexdigest()
    filtered, _ = build("findings", fmt, status=["fail"], severity=["high"])
    assert filtered == in_one_process(settings, "findings", fmt, status=["fail"], severity=["high"])


def test_small_exports_other_formats_and_past_exports_stay_in_one_process(fleet: ScannedFleet, settings: Any, parts: list) -> None:
    settings.ARC_EXPORT_PARALLEL_MIN_ROWS = FLEET_CLUSTERS * 15 + 1  # one row more than the whole fleet's findings
    build("findings", "csv")
    settings.ARC_EXPORT_PARALLEL_MIN_ROWS = 2
    build("findings", "xlsx")
    build("scorecards", "csv")
    build("findings", "csv", as_of=fleet.scan.finished_at.isoformat())
    assert parts == []


def test_both_processes_read_the_snapshot_taken_when_the_export_began(
    fleet: ScannedFleet, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = in_one_process(settings, "findings", "csv")
    start = parallel.start_part

    def commit_then_start(request: dict[str, Any]) -> subprocess.Popen[bytes]:
        # Another session rewrites every verdict after the snapshot was exported, before the part reads.
        with psycopg.connect(database_url_for_subprocess(), autocommit=True) as other:
            other.execute("UPDATE posture_controlresult SET detail = 'changed meanwhile'")
        return start(request)

    monkeypatch.setattr(parallel, "start_part", commit_then_start)
    out = io.BytesIO()
    export_to_file("findings", "csv", ExportFilters(), out, actor="tester")
    assert out.getvalue() == before
    assert ControlResult.objects.exclude(detail="changed meanwhile").count() == 0
    assert all(row["detail"] == "changed meanwhile" for row in read_csv(in_one_process(settings, "findings", "csv")) if row["status"])


def test_a_part_process_that_dies_fails_the_export_clearly_and_leaves_no_file(
    fleet: ScannedFleet, parts: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the part's file is made
    held: list[str] = []
    start = parallel.start_part  # the `parts` fixture's recorder

    def start_stopped(request: dict[str, Any]) -> subprocess.Popen[bytes]:
        # Stopped at once (it holds the inherited file already), so that it cannot finish its
        # half before the first progress call kills it: on a busy machine it sometimes had.
        part = start(request)
        os.kill(part.pid, signal.SIGSTOP)
        return part

    monkeypatch.setattr(parallel, "start_part", start_stopped)

    def kill_the_part(done: int, total: int) -> None:
        if not held:  # the part writes to an unnamed file in tmp_path, then dies
            held.extend(os.readlink(fd) for fd in Path(f"/proc/{parts[0].pid}/fd").iterdir())
            parts[0].kill()

    out = io.BytesIO()
    with pytest.raises(ExportError, match="second process failed: it ended with exit code -9"):
        export_to_file("findings", "csv", ExportFilters(), out, actor="tester", progress=kill_the_part)
    export = Export.objects.get()
    assert export.state == Export.State.FAILED and "second process failed" in export.error
    assert parts[0].returncode == -9
    assert any(link.startswith(f"{tmp_path}/") and link.endswith(" (deleted)") for link in held), held
    assert [p for p in tmp_path.iterdir() if not p.name.startswith("emulator")] == []


def test_a_part_that_fails_says_why(fleet: ScannedFleet, parts: list, monkeypatch: pytest.MonkeyPatch) -> None:
    start = parallel.start_part

    def bad_snapshot(request: dict[str, Any]) -> subprocess.Popen[bytes]:
        return start({**request, "snapshot": "00000003-0000001B-1"})

    monkeypatch.setattr(parallel, "start_part", bad_snapshot)
    with pytest.raises(ExportError, match="second process failed: .*invalid snapshot identifier"):
        export_to_file("findings", "csv", ExportFilters(), io.BytesIO(), actor="tester")


@pytest.mark.slow
def test_a_celery_prefork_worker_writes_a_large_export_in_two_processes(
    fleet: ScannedFleet, start_worker: Any, celery_live: None, settings: Any, tmp_path: Path
) -> None:
    env = {"ARC_EXPORT_STORAGE": "local", "ARC_VAR_DIR": str(tmp_path / "var"), "ARC_EXPORT_PARALLEL_MIN_ROWS": "2"}
    worker = start_worker(queues=("default",), extra_env=env, name="parts")
    user = get_user_model().objects.filter(username="erin").first() or make_user("erin", "admin")
    export = jobs.request_export(user=user, kind="findings", fmt="csv", filters=ExportFilters())
    wait_for(lambda: Export.objects.get(pk=export.pk).state in ("succeeded", "failed"), RECOVERY_BOUND, lambda: worker.log()[-4000:])
    export.refresh_from_db()
    assert export.state == Export.State.SUCCEEDED, export.error
    assert "export written in two processes" in worker.log()
    data = (tmp_path / "var" / "exports" / export.file_name).read_bytes()
    assert data == in_one_process(settings, "findings", "csv")
    assert export.sha256 == hashlib.sha256(data).hexdigest()
