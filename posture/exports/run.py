"""Run an export: write the file and record it in the audit log (posture.models.Export)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from django.db import connection, transaction
from django.utils import timezone

from posture.exports.filters import ExportFilters
from posture.exports.parallel import OWN_SNAPSHOT
from posture.exports.registry import export_type
from posture.exports.rows import Progress
from posture.models import Export


def export_to_file(
    kind: str,
    fmt: str,
    filters: ExportFilters,
    out: BinaryIO,
    *,
    user: Any = None,
    actor: str = "",
    progress: Progress | None = None,
) -> Export:
    """Write the `kind` export in `fmt` to `out` and return its audit row, `succeeded` with the
    rows, SHA-256 and size written. On any failure the row is `failed` with the error and the
    exception propagates: what reached `out` is partial, and the caller's to delete."""
    export_as = export_type(kind, fmt)  # an unknown kind or format, or filters it cannot honour,
    export_as.check(filters)  # fail before any audit row
    export = audit_row(kind, fmt, filters, user=user, actor=actor, state=Export.State.RUNNING)
    try:
        with one_snapshot():
            written = export_as.write(filters, out, progress=progress)
    except BaseException as exc:
        export.state, export.error, export.finished_at = Export.State.FAILED, f"{type(exc).__name__}: {exc}"[:2000], timezone.now()
        export.save(update_fields=["state", "error", "finished_at"])
        raise
    export.state, export.finished_at = Export.State.SUCCEEDED, timezone.now()
    export.rows, export.sha256, export.size = written.rows, written.sha256, written.size
    export.save(update_fields=["state", "finished_at", "rows", "sha256", "size"])
    return export


def audit_row(kind: str, fmt: str, filters: ExportFilters, *, user: Any = None, actor: str = "", **fields: Any) -> Export:
    """The Export row that records who asked for what, with which filters, before it is built."""
    name = actor or (user.get_username() if user is not None else "")
    return Export.objects.create(
        kind=kind, format=fmt, filters=filters.as_dict(), as_of=filters.as_of, requested_by=user, requested_by_name=name, **fields
    )


@contextmanager
def one_snapshot() -> Iterator[None]:
    """Read every chunk from one snapshot of the database, so an evaluation committing meanwhile
    cannot mix old and new verdicts in one file. PostgreSQL only, and only when no transaction is
    open yet (SET TRANSACTION must come first); elsewhere chunks read what is committed."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        owned = OWN_SNAPSHOT.set(True)  # another process may share it (posture/exports/parallel.py)
        try:
            yield
        finally:
            OWN_SNAPSHOT.reset(owned)
