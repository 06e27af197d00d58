"""The scope's evaluation lock and the scan's finish: a dead holder frees the scope at once, a
busy scope never holds a finishing worker, and a scan gets one fleet snapshot however often its
finish runs."""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from posture.evaluate.lock import ADVISORY_CLASS, ScopeBusy, evaluation_lock
from posture.management.commands import scan as scan_command
from posture.models import FleetSnapshot, Scan
from posture.scans import finish
from posture.scans.request import scan_request
from tests.conftest import database_url_for_subprocess

pytestmark = pytest.mark.django_db(transaction=True)


def scanned_scope(make_emulator: Any, emulator_scope: Any) -> tuple[Any, Scan]:
    emulator = make_emulator(clusters=30)
    scope = emulator_scope(emulator)
    scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    return scope, scan


class OtherProcess:
    """A second database session holding the scope's lock, as another worker would."""

    def __init__(self, scope_id: int) -> None:
        self.db = psycopg.connect(database_url_for_subprocess(), autocommit=True)
        assert self.db.execute("SELECT pg_try_advisory_lock(%s, %s)", (ADVISORY_CLASS, scope_id)).fetchone()[0]

    def die(self) -> None:
        self.db.close()


def test_the_evaluation_lock_of_a_dead_holder_is_free_at_once(postgres, make_emulator, emulator_scope) -> None:
    scope, _ = scanned_scope(make_emulator, emulator_scope)
    holder = OtherProcess(scope.pk)
    with pytest.raises(ScopeBusy), evaluation_lock(scope.pk, wait_seconds=0.6):
        pass
    holder.die()  # a SIGKILLed worker, or a restarted server: the session ends
    with evaluation_lock(scope.pk) as lock:
        lock.renew()
    with evaluation_lock(scope.pk, wait_seconds=0.6):  # released by its owner on the way out
        pass


def test_a_finish_taken_over_after_its_snapshot_closes_the_scan_with_one_snapshot(postgres, make_emulator, emulator_scope) -> None:
    _, scan = scanned_scope(make_emulator, emulator_scope)
    assert FleetSnapshot.objects.filter(scan=scan).count() == 1
    # The first finisher died after writing the snapshot, before closing the scan; its heartbeat
    # went stale, so the watchdog re-queued the finish.
    Scan.objects.filter(pk=scan.pk).update(state=Scan.State.EVALUATING, heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    finish.finish_scan(str(scan.pk))
    finish.finish_scan(str(scan.pk))  # and the original message, redelivered
    scan.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED
    assert FleetSnapshot.objects.filter(scan=scan).count() == 1


def test_the_database_holds_one_snapshot_per_scan(postgres, make_emulator, emulator_scope) -> None:
    _, scan = scanned_scope(make_emulator, emulator_scope)
    first = FleetSnapshot.objects.get(scan=scan)
    with pytest.raises(IntegrityError), transaction.atomic():
        FleetSnapshot.objects.create(scope_id=scan.scope_id, scan=scan, created_at=timezone.now(), catalog_version=first.catalog_version)


def test_a_finish_that_finds_its_scope_busy_leaves_a_retry_instead_of_waiting(postgres, make_emulator, emulator_scope, monkeypatch) -> None:
    from posture import tasks

    _, scan = scanned_scope(make_emulator, emulator_scope)
    Scan.objects.filter(pk=scan.pk).update(state=Scan.State.RUNNING)
    retries: list[dict[str, Any]] = []
    monkeypatch.setattr(finish, "tasks_run_inline", lambda: False)
    monkeypatch.setattr(tasks.finish_scan, "apply_async", lambda **options: retries.append(options))
    holder = OtherProcess(scan.scope_id)
    finish.finish_scan(str(scan.pk))
    assert retries == [{"kwargs": {"scan_id": str(scan.pk)}, "countdown": finish.FINISH_RETRY_SECONDS}]
    assert Scan.objects.get(pk=scan.pk).state == Scan.State.RUNNING
    holder.die()
    finish.finish_scan(str(scan.pk))
    assert Scan.objects.get(pk=scan.pk).state == Scan.State.SUCCEEDED
    assert FleetSnapshot.objects.filter(scan=scan).count() == 1


def test_scan_wait_rides_out_a_database_outage(make_emulator, emulator_scope, monkeypatch, capsys) -> None:
    emulator = make_emulator(clusters=20)
    emulator_scope(emulator, name="corp")
    real = scan_command.scan_progress
    failures = iter([OperationalError("server closed the connection unexpectedly"), OperationalError("connection refused")])

    def restarting_database(scan_id: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(scan_id)

    monkeypatch.setattr(scan_command, "scan_progress", restarting_database)
    monkeypatch.setattr(scan_command, "OUTAGE_RETRY_SECONDS", 0.01)
    call_command("scan", "--scope", "corp", "--wait")
    captured = capsys.readouterr()
    assert captured.err.count("database unreachable, retrying") == 2
    assert "corp: succeeded, 20 clusters" in captured.out


def test_scan_wait_gives_up_on_a_database_that_stays_down_with_a_clear_error(make_emulator, emulator_scope, monkeypatch) -> None:
    from django.core.management import CommandError

    emulator = make_emulator(clusters=5)
    emulator_scope(emulator, name="corp")

    def down(scan_id: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(scan_command, "scan_progress", down)
    monkeypatch.setattr(scan_command, "OUTAGE_RETRY_SECONDS", 0.01)
    monkeypatch.setattr(scan_command, "OUTAGE_LIMIT_SECONDS", 0.05)
    with pytest.raises(CommandError, match="database has been unreachable"):
        call_command("scan", "--scope", "corp", "--wait", stderr=io.StringIO())


def test_by_default_a_dead_workers_batch_is_handed_out_again_within_90_seconds() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from posture.scans.schedules import WATCHDOG, sync_periodic_tasks
    from web.settings import base

    sync_periodic_tasks()
    tick = PeriodicTask.objects.get(name=WATCHDOG).interval
    assert tick.period == IntervalSchedule.SECONDS
    # Silent for the stale limit, then found at the watchdog's next tick at the latest; running
    # batches beat every ARC_PROGRESS_INTERVAL_SECONDS, at least five times within the limit.
    assert base.ARC_WATCHDOG_STALE_SECONDS + tick.every < 90
    assert base.ARC_WATCHDOG_STALE_SECONDS >= 5 * base.ARC_PROGRESS_INTERVAL_SECONDS
