"""Findings exports written by two processes from one database snapshot
(posture/exports/parallel.py): the same bytes as one process, a snapshot that commits meanwhile
cannot change, and a part process that dies fails the export clearly."""

from __future__ import annotations

import io
import multiprocessing
from typing import Any

import psycopg
import pytest
from django.db import connection

from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.run import export_to_file
from posture.models import ControlResult, Export
from tests.posture.exports_fleet import FLEET_CLUSTERS, ScannedFleet, build, read_csv, scan_fleet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture
def fleet(postgres: None, make_emulator: Any, emulator_scope: Any) -> ScannedFleet:
    return scan_fleet(make_emulator, emulator_scope)


def in_one_process(settings: Any, kind: str, fmt: str, **filters: Any) -> bytes:
    settings.ARC_EXPORT_TWO_PROCESSES = False
    data, _ = build(kind, fmt, **filters)
    settings.ARC_EXPORT_TWO_PROCESSES = True
    return data


def parts_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the part processes started."""
    started: list[int] = []
    original = multiprocessing.context.SpawnProcess.start

    def start(self: Any) -> None:
        started.append(1)
        original(self)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start)
    return started


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_in_two_processes_holds_the_same_bytes_as_one_process(
    fleet: ScannedFleet, settings: Any, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    settings.ARC_EXPORT_PARALLEL_MIN_CLUSTERS = 2
    started = parts_used(monkeypatch)
    data, export = build("findings", fmt)
    assert started == [1]
    assert data == in_one_process(settings, "findings", fmt)
    assert export.rows == len(data.splitlines()) - (fmt == "csv") > FLEET_CLUSTERS
    filtered, _ = build("findings", fmt, status=["fail"], severity=["high"])
    assert filtered == in_one_process(settings, "findings", fmt, status=["fail"], severity=["high"])


def test_small_exports_and_other_formats_stay_in_one_process(fleet: ScannedFleet, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    started = parts_used(monkeypatch)
    settings.ARC_EXPORT_PARALLEL_MIN_CLUSTERS = FLEET_CLUSTERS + 1
    build("findings", "csv")
    settings.ARC_EXPORT_PARALLEL_MIN_CLUSTERS = 2
    build("findings", "xlsx")
    build("scorecards", "csv")
    assert started == []


def test_both_processes_read_the_snapshot_taken_when_the_export_began(fleet: ScannedFleet, settings: Any) -> None:
    settings.ARC_EXPORT_PARALLEL_MIN_CLUSTERS = 2
    before = in_one_process(settings, "findings", "csv")
    dsn = psycopg.conninfo.make_conninfo(
        dbname=connection.settings_dict["NAME"], user=connection.settings_dict["USER"], host=connection.settings_dict["HOST"]
    )
    changed: list[bool] = []

    def commit_meanwhile(done: int, total: int) -> None:
        if not changed:  # another session rewrites every verdict once the export has begun
            with psycopg.connect(dsn, port=connection.settings_dict["PORT"] or None, autocommit=True) as other:
                other.execute("UPDATE posture_controlresult SET detail = 'changed meanwhile'")
            changed.append(True)

    out = io.BytesIO()
    export_to_file("findings", "csv", ExportFilters(), out, actor="tester", progress=commit_meanwhile)
    assert changed and out.getvalue() == before
    assert ControlResult.objects.exclude(detail="changed meanwhile").count() == 0
    assert all(row["detail"] == "changed meanwhile" for row in read_csv(in_one_process(settings, "findings", "csv")) if row["status"])


def test_a_part_process_that_dies_fails_the_export_clearly(fleet: ScannedFleet, settings: Any) -> None:
    settings.ARC_EXPORT_PARALLEL_MIN_CLUSTERS = 2

    def kill_the_part(done: int, total: int) -> None:
        for child in multiprocessing.active_children():
            child.kill()
            child.join()

    out = io.BytesIO()
    with pytest.raises(ExportError, match="second process failed: it ended with exit code -9"):
        export_to_file("findings", "csv", ExportFilters(), out, actor="tester", progress=kill_the_part)
    export = Export.objects.get()
    assert export.state == Export.State.FAILED and "second process failed" in export.error
    assert multiprocessing.active_children() == []
