"""Exports built by the task into storage (here the local file system): the audit row matches the
file, a re-run or a second delivery makes no second file, every failure leaves nothing behind,
a dead worker's build is handed out again and finished once, and expiry deletes file and row."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import storages
from django.utils import timezone

from posture.exports import jobs, registry
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.registry import ExportType, Format
from posture.exports.writers import Written
from posture.models import Export, Scope
from tests.conftest import make_user
from tests.posture.conftest import SMALL_FLEET as CLUSTERS

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exports saved under tmp_path/store; temporary files made under tmp_path/scratch."""
    options = {"location": tmp_path / "store", "base_url": None, "allow_overwrite": True}
    settings.STORAGES = {**settings.STORAGES, "exports": {"BACKEND": "posture.exports.storage.ExportFileStorage", "OPTIONS": options}}
    (tmp_path / "scratch").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    return tmp_path


def stored(root: Path) -> list[Path]:
    return sorted(p for p in (root / "store").rglob("*") if p.is_file())


def leftovers(root: Path) -> list[Path]:
    return list((root / "scratch").iterdir())


def request(django_capture_on_commit_callbacks: Any, kind: str = "findings", fmt: str = "csv", **filters: Any) -> Export:
    with django_capture_on_commit_callbacks(execute=True):
        user = get_user_model().objects.filter(username="erin").first() or make_user("erin", "admin")
        export = jobs.request_export(user=user, kind=kind, fmt=fmt, filters=ExportFilters.parse(filters))
    export.refresh_from_db()
    return export


def failing_writer(exc: OSError) -> Any:
    def write(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: BinaryIO) -> Written:
        for _ in rows:
            out.write(b"half a file\n")
        raise exc

    return write


def test_a_requested_export_is_built_into_storage_and_its_row_describes_the_file(
    small_fleet: Scope, store: Path, django_capture_on_commit_callbacks: Any
) -> None:
    export = request(django_capture_on_commit_callbacks, severity="high")
    assert export.state == Export.State.SUCCEEDED, export.error
    assert export.file_name == jobs.storage_name(export, export.claimed_at)
    assert re.fullmatch(rf"exports/{export.pk}-\d{{8}}T\d{{12}}Z\.csv", export.file_name)
    content = (store / "store" / export.file_name).read_bytes()
    assert stored(store) == [store / "store" / export.file_name]
    high = len([c for c in ExportFilters(severity=("high",)).controls()])
    assert export.rows == CLUSTERS * high
    assert content.count(b"\r\n") == export.rows + 1
    assert (export.sha256, export.size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert export.filters == {"severity": ["high"]} and export.requested_by_name == "erin"
    assert export.progress_done == export.progress_total == CLUSTERS
    assert export.expires_at - export.finished_at == dt.timedelta(days=7)
    with jobs.export_file(export) as downloaded:
        assert downloaded.read() == content
    assert leftovers(store) == []


def test_the_retention_comes_from_the_setting(
    small_fleet: Scope, store: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ARC_EXPORT_RETENTION_DAYS = 2
    export = request(django_capture_on_commit_callbacks, kind="scorecards", fmt="xlsx")
    assert export.expires_at - export.finished_at == dt.timedelta(days=2)


def test_a_rerun_or_second_delivery_of_a_finished_export_does_nothing(
    small_fleet: Scope, store: Path, django_capture_on_commit_callbacks: Any
) -> None:
    export = request(django_capture_on_commit_callbacks)
    path = store / "store" / export.file_name
    before = (path.stat().st_mtime_ns, path.read_bytes())
    jobs.build_export(str(export.pk))
    jobs.build_export(str(export.pk))
    again = Export.objects.get(pk=export.pk)
    assert (again.state, again.finished_at, again.attempts, again.sha256) == (export.state, export.finished_at, 1, export.sha256)
    assert stored(store) == [path] and (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_a_stored_export_of_a_kind_no_longer_known_fails_clearly(small_fleet: Scope, store: Path) -> None:
    export = Export.objects.create(kind="retired", format="csv", filters={})
    jobs.build_export(str(export.pk))
    export.refresh_from_db()
    assert (export.state, export.error, stored(store)) == (
        Export.State.FAILED,
        "Unknown export 'retired' (one of findings, scorecards, report, bundle, oscal).",
        [],
    )


def test_an_unknown_kind_or_format_is_refused_before_any_row(small_fleet: Scope, store: Path) -> None:
    with pytest.raises(ExportError, match="Unknown export 'secrets'"):
        jobs.request_export(user=None, kind="secrets", fmt="csv", filters=ExportFilters())
    with pytest.raises(ExportError, match="No 'pdf' format for findings"):
        jobs.request_export(user=None, kind="findings", fmt="pdf", filters=ExportFilters())
    assert not Export.objects.exists()


def test_bad_stored_filters_fail_the_build_clearly_and_leave_nothing(small_fleet: Scope, store: Path) -> None:
    export = Export.objects.create(kind="findings", format="csv", filters={"grade": "Z", "colour": "red"})
    jobs.build_export(str(export.pk))
    export.refresh_from_db()
    assert export.state == Export.State.FAILED
    assert export.error.startswith("Bad export filters: unknown filter 'colour'; unknown grade 'Z'")
    assert (export.file_name, stored(store), leftovers(store)) == ("", [], [])


def test_a_full_disk_fails_the_build_clearly_and_leaves_nothing(
    small_fleet: Scope, store: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    full = Format("csv", failing_writer(OSError(errno.ENOSPC, "No space left on device")), "text/csv", "csv")
    monkeypatch.setitem(registry.EXPORTS, ("findings", "csv"), ExportType(registry.FINDINGS, full))
    export = request(django_capture_on_commit_callbacks)
    assert export.state == Export.State.FAILED
    assert export.error == "Could not write the export: the disk is full (no space left on device)."
    assert (export.file_name, export.sha256, stored(store), leftovers(store)) == ("", "", [], [])


def test_a_storage_that_refuses_the_file_fails_the_build_and_keeps_no_part_of_it(
    small_fleet: Scope, store: Path, django_capture_on_commit_callbacks: Any
) -> None:
    (store / "store").mkdir()
    (store / "store" / "exports").write_text("a file where the folder should be")
    export = request(django_capture_on_commit_callbacks)
    assert export.state == Export.State.FAILED
    assert export.error.startswith("Could not save the export to storage: ")
    assert stored(store) == [store / "store" / "exports"] and leftovers(store) == []


def test_a_dead_workers_build_is_handed_out_again_and_finished_once(small_fleet: Scope, store: Path, settings: Any) -> None:
    export = Export.objects.create(kind="findings", format="csv", filters={})
    long_ago = timezone.now() - dt.timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS + 1)
    dead = store / "store" / jobs.storage_name(export, long_ago)
    # The worker claimed it, saved its file and died before finishing.
    Export.objects.filter(pk=export.pk).update(state=Export.State.RUNNING, claimed_at=long_ago, heartbeat_at=long_ago, attempts=1)
    dead.parent.mkdir(parents=True)
    dead.write_bytes(b"the dead claim's file")
    counts = jobs.requeue_orphaned()  # tasks run in-process: the rebuild happens now
    export.refresh_from_db()
    assert counts == {"exports_requeued": 1, "exports_failed": 0}
    assert (export.state, export.attempts) == (Export.State.SUCCEEDED, 2)
    name = store / "store" / export.file_name
    assert name != dead and stored(store) == [name]
    assert hashlib.sha256(name.read_bytes()).hexdigest() == export.sha256
    assert jobs.requeue_orphaned() == {"exports_requeued": 0, "exports_failed": 0}


def test_a_live_build_is_left_alone_and_a_stale_claim_cannot_finish(small_fleet: Scope, store: Path) -> None:
    export = Export.objects.create(kind="findings", format="csv", filters={})
    now = timezone.now()
    Export.objects.filter(pk=export.pk).update(state=Export.State.RUNNING, claimed_at=now, heartbeat_at=now, attempts=1)
    assert jobs.requeue_orphaned() == {"exports_requeued": 0, "exports_failed": 0}
    jobs.build_export(str(export.pk))  # a second delivery while it runs: no claim, no file
    export.refresh_from_db()
    assert (export.state, export.attempts, stored(store)) == (Export.State.RUNNING, 1, [])
    # The old claim's progress no longer counts once another worker holds the export.
    jobs.BuildProgress(export.pk, now - dt.timedelta(seconds=1), inline=True)(3, 6)
    export.refresh_from_db()
    assert (export.progress_done, export.progress_total) == (0, 0)


def test_a_build_whose_worker_keeps_dying_fails_after_the_last_attempt(small_fleet: Scope, store: Path, settings: Any) -> None:
    export = Export.objects.create(kind="findings", format="csv", filters={})
    long_ago = timezone.now() - dt.timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS + 1)
    Export.objects.filter(pk=export.pk).update(
        state=Export.State.RUNNING, claimed_at=long_ago, heartbeat_at=long_ago, attempts=jobs.MAX_ATTEMPTS
    )
    (store / "store" / "exports").mkdir(parents=True)
    (store / "store" / jobs.storage_name(export, long_ago)).write_bytes(b"half")
    assert jobs.requeue_orphaned() == {"exports_requeued": 0, "exports_failed": 1}
    export.refresh_from_db()
    assert export.state == Export.State.FAILED and "lost 3 times" in export.error
    assert stored(store) == []


def test_a_pending_export_whose_message_was_lost_is_queued_again_once_per_stale_period(
    small_fleet: Scope, store: Path, settings: Any
) -> None:
    export = Export.objects.create(kind="scorecards", format="jsonl", filters={})
    assert jobs.requeue_orphaned()["exports_requeued"] == 0  # just requested: its message may be on its way
    later = timezone.now() + dt.timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS + 1)
    assert jobs.requeue_orphaned(later)["exports_requeued"] == 1
    export.refresh_from_db()
    assert export.state == Export.State.SUCCEEDED and export.rows == CLUSTERS


def test_expiry_deletes_expired_files_and_their_rows_only(small_fleet: Scope, store: Path, django_capture_on_commit_callbacks: Any) -> None:
    old, young = request(django_capture_on_commit_callbacks), request(django_capture_on_commit_callbacks, kind="scorecards")
    Export.objects.filter(pk=young.pk).update(expires_at=old.expires_at + dt.timedelta(days=1))
    failed = Export.objects.create(kind="findings", format="csv", state=Export.State.FAILED, expires_at=old.expires_at)
    # A file an earlier claim of each saved but could not delete then (its storage was down).
    for export in (old, failed, young):
        (store / "store" / jobs.storage_name(export, old.created_at)).write_bytes(b"an earlier claim's file")
    assert jobs.delete_expired(now=old.expires_at - dt.timedelta(seconds=1)) == 0
    assert jobs.delete_expired(now=old.expires_at) == 2
    assert list(Export.objects.values_list("pk", flat=True)) == [young.pk]
    assert stored(store) == sorted([store / "store" / young.file_name, store / "store" / jobs.storage_name(young, old.created_at)])
    assert not Export.objects.filter(pk=failed.pk).exists()


def test_only_a_built_unexpired_export_has_a_file(small_fleet: Scope, store: Path, django_capture_on_commit_callbacks: Any) -> None:
    pending = Export.objects.create(kind="findings", format="csv")
    with pytest.raises(ExportError, match="no file to download"):
        jobs.export_file(pending)
    built = request(django_capture_on_commit_callbacks)
    built.expires_at = timezone.now()
    with pytest.raises(ExportError, match="expired"):
        jobs.export_file(built)


def test_exports_go_to_their_own_storage_and_static_files_are_untouched(settings: Any, tmp_path: Path) -> None:
    assert storages["exports"] is not storages["staticfiles"]
    assert Path(storages["exports"].location) == settings.VAR_DIR / "exports"


def take_over(store: Path) -> None:
    """Another worker claims the running export and finishes it, its own file saved."""
    export = Export.objects.get(state=Export.State.RUNNING)
    later = timezone.now() + dt.timedelta(seconds=1)
    name = jobs.storage_name(export, later)
    (store / "store" / name).parent.mkdir(parents=True, exist_ok=True)
    (store / "store" / name).write_bytes(b"the new claim's file")
    sha = hashlib.sha256(b"the new claim's file").hexdigest()
    Export.objects.filter(pk=export.pk).update(state=Export.State.SUCCEEDED, claimed_at=later, file_name=name, sha256=sha)


def taken_over(store: Path, then: OSError | None) -> Any:
    """A writer during whose build the watchdog handed the export to another worker, which
    finished it; then this build fails with `then`, or ends well."""

    def write(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: BinaryIO) -> Written:
        take_over(store)
        out.write(b"the stale claim's file")
        if then is not None:
            raise then
        return Written(rows=1, sha256=hashlib.sha256(b"the stale claim's file").hexdigest(), size=22)

    return write


def assert_only_the_new_claims_file(export: Export, store: Path) -> None:
    assert (export.state, export.error) == (Export.State.SUCCEEDED, "")
    path = store / "store" / export.file_name
    assert stored(store) == [path] and path.read_bytes() == b"the new claim's file"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == export.sha256


@pytest.mark.parametrize("then", [None, OSError(errno.EIO, "Input/output error")], ids=["finishing", "failing"])
def test_a_stale_claim_neither_replaces_nor_deletes_the_file_of_the_claim_that_finished(
    small_fleet: Scope, store: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any, then: OSError | None
) -> None:
    stale = Format("csv", taken_over(store, then), "text/csv", "csv")
    monkeypatch.setitem(registry.EXPORTS, ("findings", "csv"), ExportType(registry.FINDINGS, stale))
    assert_only_the_new_claims_file(request(django_capture_on_commit_callbacks), store)


def test_a_claim_taken_over_between_its_last_check_and_its_save_deletes_its_own_late_file(
    small_fleet: Scope, store: Path, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    save = jobs._save

    def late_save(name: str, content: Any) -> str:
        take_over(store)
        return save(name, content)

    monkeypatch.setattr(jobs, "_save", late_save)
    assert_only_the_new_claims_file(request(django_capture_on_commit_callbacks), store)


class CutContent:
    """File content whose reading stops with an error after its first chunk (a worker dying mid-save)."""

    def chunks(self) -> Iterable[bytes]:
        yield b"PK\x03\x04 half of a zip"
        raise OSError(errno.EIO, "worker killed")


def test_a_save_cut_short_leaves_no_file_under_the_exports_name(store: Path) -> None:
    storage = storages["exports"]
    with pytest.raises(OSError, match="worker killed"):
        storage._save("exports/cut.zip", CutContent())
    assert stored(store) == []


def test_partial_files_left_by_a_killed_save_are_swept_with_the_expired_exports(store: Path) -> None:
    partial = store / "store" / "exports" / ".partial-abc123"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half")
    fresh = partial.with_name(".partial-new")
    fresh.write_bytes(b"being written")
    day_ago = timezone.now().timestamp() - 25 * 3600
    os.utime(partial, (day_ago, day_ago))
    jobs.delete_expired()
    assert stored(store) == [fresh]
