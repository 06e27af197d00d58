"""Exports built by a Celery task into Django's storage (STORAGES["exports"]), and their expiry.

request_export records a pending Export and queues posture.build_export. The task claims it
(pending → running in one conditional UPDATE: a second delivery finds nothing to claim), writes
the file to an unnamed temporary file on disk, then saves it to storage under a name of its own
claim, exports/<id>-<claim time>.<ext>. A failure marks the export failed and leaves nothing in
storage. A worker that dies mid-build stops beating: the watchdog hands the export back
(requeue_orphaned, which deletes whatever the dead claim saved) and the next claim rebuilds it.
Only the latest claim may finish the export; a claim that cannot deletes its own file, and no
claim can touch another's, however late it saves: one request, one file.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import tempfile
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.registry import export_type
from posture.exports.run import audit_row, one_snapshot
from posture.exports.storage import ExportFileStorage
from posture.exports.writers import Written
from posture.heartbeat import heartbeat_thread
from posture.models import Export
from posture.task_queue import BUILD_EXPORT, enqueue

log = logging.getLogger(__name__)

SMALL_EXPORT_ROWS = 10_000  # below this the web streams directly
# A build whose worker died this many times (a poison request, say one that exhausts memory) fails.
MAX_ATTEMPTS = 3
UUID_CHARS = 36


def exports_storage() -> Storage:
    return storages["exports"]


def request_export(*, user: Any, kind: str, fmt: str, filters: ExportFilters) -> Export:
    """A pending export of `kind` in `fmt`, queued for posture.build_export once this commits.
    ExportError for an unknown kind or format (no audit row then)."""
    export_type(kind, fmt)
    with transaction.atomic():
        export = audit_row(kind, fmt, filters, user=user)
        export_id = str(export.pk)
        transaction.on_commit(lambda: enqueue(BUILD_EXPORT, export_id=export_id))
    export.refresh_from_db()  # built already when tasks run in-process
    return export


def build_export(export_id: str) -> None:
    """The task's body: build a pending export into storage, or do nothing if it is not pending."""
    claim = timezone.now()
    claimed = Export.objects.filter(pk=export_id, state=Export.State.PENDING).update(
        state=Export.State.RUNNING, claimed_at=claim, heartbeat_at=claim, attempts=F("attempts") + 1, progress_done=0, error=""
    )
    if not claimed:
        return  # a second delivery, a re-run, or built already
    export = Export.objects.get(pk=export_id)
    name = ""
    try:
        name = storage_name(export, claim)  # an unknown kind fails here, with its reason
        with tempfile.TemporaryFile(prefix="arc-export-") as scratch:
            written = _write(export, claim, scratch)
            if not _still_claimed(export, claim):  # spare the upload
                log.warning("export %s was claimed again while it was built; leaving it to the new claim", export.pk)
                return
            scratch.seek(0)
            saved = _save(name, scratch)
        _finish(export, claim, saved, written)
    except Exception as exc:  # noqa: BLE001 - every failure ends the export, with its reason
        message = failure_message(exc)
        log.warning("export %s failed: %s", export.pk, message)
        Export.objects.filter(pk=export.pk, state=Export.State.RUNNING, claimed_at=claim).update(
            state=Export.State.FAILED, error=message[:2000], finished_at=timezone.now(), expires_at=_expiry()
        )
        if name:
            _delete_quietly(export, name)  # this claim's name: no other claim's file


def _still_claimed(export: Export, claim: Any) -> bool:
    return Export.objects.filter(pk=export.pk, state=Export.State.RUNNING, claimed_at=claim).exists()


def storage_name(export: Export, claim: Any) -> str:
    """The file of one claim: a claim that lost the export, saving late, cannot replace the file
    of the claim that finished it (the recorded SHA-256 would no longer match)."""
    stamp = claim.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"exports/{export.pk}-{stamp}.{export_type(export.kind, export.format).extension}"


def _write(export: Export, claim: Any, out: Any) -> Written:
    filters = ExportFilters.parse(export.filters)
    # A thread beats while the snapshot's read-only transaction holds this connection (PostgreSQL);
    # elsewhere the progress callback writes in line.
    threaded = connection.vendor == "postgresql" and not connection.in_atomic_block
    progress = BuildProgress(export.pk, claim, inline=not threaded)
    with heartbeat_thread(progress.beat, name=f"export-{export.pk}"), one_snapshot():
        written = export_type(export.kind, export.format).write(filters, out, progress=progress)
    out.flush()
    return written


def _save(name: str, content: Any) -> str:
    try:
        return exports_storage().save(name, File(content, name=name))
    except Exception as exc:  # noqa: BLE001 - the storage backend's own errors (Azure, OS)
        raise ExportError(f"Could not save the export to storage: {type(exc).__name__}: {exc}") from exc


def _finish(export: Export, claim: Any, saved: str, written: Written) -> None:
    now = timezone.now()
    finished = Export.objects.filter(pk=export.pk, state=Export.State.RUNNING, claimed_at=claim).update(
        state=Export.State.SUCCEEDED,
        file_name=saved,
        rows=written.rows,
        sha256=written.sha256,
        size=written.size,
        finished_at=now,
        heartbeat_at=now,
        expires_at=_expiry(now),
        progress_done=F("progress_total"),
    )
    if not finished:  # handed to another claim meanwhile: this claim's file is nobody's
        log.warning("export %s was claimed again while it was saved; leaving it to the new claim", export.pk)
        _delete_quietly(export, saved)


def failure_message(exc: BaseException) -> str:
    """What the user reads on the exports page: the reason, never a secret."""
    if isinstance(exc, ExportError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "Could not write the export: the disk is full (no space left on device)."
    if isinstance(exc, OSError):
        return f"Could not write the export: {exc.strerror or exc}."
    return f"The export failed: {type(exc).__name__}: {exc}"


def _delete_quietly(export: Export, name: str) -> None:
    """Remove what a claim may have saved (a failed save can leave part of a file)."""
    try:
        exports_storage().delete(name)
    except Exception as exc:  # noqa: BLE001 - storage unreachable: nothing was saved either
        log.warning("export %s: could not delete its file from storage: %s", export.pk, type(exc).__name__)


def _expiry(now: Any = None) -> Any:
    return (now or timezone.now()) + timedelta(days=settings.ARC_EXPORT_RETENTION_DAYS)


class BuildProgress:
    """The progress callback of a build: clusters done of all, written with the heartbeat at most
    every ARC_PROGRESS_INTERVAL_SECONDS (by the heartbeat thread, or in line when there is none)."""

    def __init__(self, export_id: Any, claim: Any, *, inline: bool) -> None:
        self.export_id, self.claim, self.inline = export_id, claim, inline
        self.done = self.total = 0
        self.beaten_at = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        first = self.total == 0 and total > 0
        self.done, self.total = done, total
        if self.inline and (first or time.monotonic() - self.beaten_at >= settings.ARC_PROGRESS_INTERVAL_SECONDS):
            self.beat()

    def beat(self) -> None:
        self.beaten_at = time.monotonic()
        Export.objects.filter(pk=self.export_id, state=Export.State.RUNNING, claimed_at=self.claim).update(
            progress_done=self.done, progress_total=self.total, heartbeat_at=timezone.now()
        )


def export_file(export: Export) -> File:
    """The built file, open for reading from storage (the download view streams it).
    ExportError when there is none: not built (yet), failed, or expired."""
    if export.state != Export.State.SUCCEEDED or not export.file_name:
        raise ExportError(f"This export has no file to download ({export.state}).")
    if export.expires_at is not None and export.expires_at <= timezone.now():
        raise ExportError("This export has expired; request it again.")
    return exports_storage().open(export.file_name, "rb")


def delete_expired(now: Any = None) -> int:
    """Delete expired exports: their files from storage (the finished one, and any a claim saved
    but could not delete then), then their rows. An export whose files storage cannot delete now
    keeps its row, for the next run. Returns how many exports were deleted."""
    now = now or timezone.now()
    storage = exports_storage()
    deleted = 0
    expired = Export.objects.filter(expires_at__lte=now).only("pk", "file_name")
    claims = _files_by_export(storage) if expired.exists() else {}
    for export in expired.iterator():
        try:
            for name in sorted(({export.file_name} | claims.get(str(export.pk), set())) - {""}):
                storage.delete(name)
        except Exception as exc:  # noqa: BLE001 - the storage backend's own errors
            log.warning("expired export %s: could not delete its file: %s", export.pk, type(exc).__name__)
            continue
        deleted += Export.objects.filter(pk=export.pk).delete()[0]
    if isinstance(storage, ExportFileStorage):  # Blob uploads are whole or absent: nothing to sweep
        storage.remove_partials(older_than_seconds=24 * 3600)
    return deleted


def _files_by_export(storage: Storage) -> dict[str, set[str]]:
    """Export id -> the names under exports/ its claims saved (exports/<id>-<claim time>.<ext>)."""
    try:
        _, names = storage.listdir("exports")
    except FileNotFoundError:
        return {}
    except Exception as exc:  # noqa: BLE001 - the storage backend's own errors: the finished files still go
        log.warning("could not list the exports in storage: %s", type(exc).__name__)
        return {}
    found: dict[str, set[str]] = {}
    for listed in names:
        name = listed.rsplit("/", 1)[-1]  # Blob Storage lists the whole name, the file system the base name
        if len(name) > UUID_CHARS and name[UUID_CHARS] == "-":  # <uuid>-<claim time>.<ext>
            found.setdefault(name[:UUID_CHARS], set()).add(f"exports/{name}")
    return found


def requeue_orphaned(now: Any = None) -> dict[str, int]:
    """The watchdog's part for exports: a build whose heartbeat went stale (its worker died) goes
    back to pending and is queued again; so is a pending one whose message was lost. Every
    change is a conditional UPDATE, so a watchdog racing a live worker changes nothing."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ARC_WATCHDOG_STALE_SECONDS)
    counts = {"exports_requeued": 0, "exports_failed": 0}
    orphaned = Q(state=Export.State.RUNNING, heartbeat_at__lt=stale)
    unqueued = Q(state=Export.State.PENDING) & (Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale))
    for export in Export.objects.filter(orphaned | unqueued):
        unchanged = Export.objects.filter(pk=export.pk, state=export.state, heartbeat_at=export.heartbeat_at)
        if export.state == Export.State.RUNNING and export.attempts >= MAX_ATTEMPTS:
            message = f"The worker building this export was lost {export.attempts} times; giving up."
            if unchanged.update(state=Export.State.FAILED, error=message, finished_at=now, expires_at=_expiry(now)):
                counts["exports_failed"] += 1
                _delete_quietly(export, storage_name(export, export.claimed_at))
            continue
        # heartbeat_at of a pending export is when it was last queued: once per stale period.
        if unchanged.update(state=Export.State.PENDING, claimed_at=None, heartbeat_at=now):
            counts["exports_requeued"] += 1
            if export.claimed_at is not None:  # the dead claim may have saved before it could finish
                _delete_quietly(export, storage_name(export, export.claimed_at))
            enqueue(BUILD_EXPORT, export_id=str(export.pk))
    return counts
