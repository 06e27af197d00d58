"""Large findings exports in CSV and JSON Lines, written by two processes at once.

Why: such an export is bound by Python (building and joining rows), not by PostgreSQL, so one
process uses one core. A second process writes the later clusters (by name, then pk) to a part
file while this one writes the earlier ones; this one then appends the part. Both read one
snapshot of the database (`pg_export_snapshot()` here, `SET TRANSACTION SNAPSHOT` there), so the
bytes are exactly those one process would write, and a scan committing meanwhile changes neither.

Only where that holds and pays: PostgreSQL; the export's read-only snapshot transaction opened by
the export itself (run.one_snapshot: an outer transaction may hold writes another session cannot
see); at least ARC_EXPORT_PARALLEL_MIN_CLUSTERS clusters (a process takes about a second to
start) and ARC_EXPORT_PROCESSES > 1. The part process is spawned, not forked: a fork would share
this process's database socket and a heartbeat thread's locks. It starts as a fresh interpreter
that imports this module before Django is set up, so this module imports no model at its top and
names the functions the part runs rather than pickling them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from django.conf import settings
from django.db import connection
from django.utils.module_loading import import_string

from posture.exports.errors import ExportError
from posture.exports.writers import HashingWriter, Written

if TYPE_CHECKING:
    from posture.exports.filters import ExportFilters
    from posture.exports.rows import Key, Progress

log = logging.getLogger(__name__)

FIRST_SHARE = 0.54  # this process starts about a second before the part process, which it then appends
POLL_SECONDS = 0.2
# Set by run.one_snapshot while an export reads in the repeatable-read transaction it opened.
OWN_SNAPSHOT: ContextVar[bool] = ContextVar("own_snapshot", default=False)


@dataclass(frozen=True)
class LineExport:
    """The functions both processes write rows with: a reader taking cell=, fuse=, after= and
    through=, and a line writer taking header=."""

    reader: Callable[..., Any]
    writer: Callable[..., Written]
    columns: tuple[str, ...]
    cell: Callable[[Any], Any]
    fuse: Callable[[Any], Any]

    def names(self) -> dict[str, Any]:
        def name(function: Any) -> str:
            return f"{function.__module__}.{function.__qualname__}"

        return {
            "reader": name(self.reader),
            "writer": name(self.writer),
            "columns": self.columns,
            "cell": name(self.cell),
            "fuse": name(self.fuse),
        }

    @classmethod
    def named(cls, names: dict[str, Any]) -> LineExport:
        found = {key: import_string(value) for key, value in names.items() if key != "columns"}
        return cls(columns=tuple(names["columns"]), **found)


def write_in_parts(job: LineExport, filters: ExportFilters, out: BinaryIO, *, progress: Progress | None) -> Written | None:
    """The export written by two processes, or None when it should be written by one."""
    total = _clusters_if_worth_it(filters)
    if total is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    first_clusters = int(total * FIRST_SHARE)
    split: Key = tuple(filters.clusters().order_by("name", "pk").values_list("name", "pk")[first_clusters - 1])  # type: ignore[assignment]
    context = multiprocessing.get_context("spawn")
    done = context.Value("q", 0, lock=False)
    receive, send = context.Pipe(duplex=False)
    handle, part_path = tempfile.mkstemp(prefix="arc-export-part-")
    os.close(handle)
    database = {key: connection.settings_dict[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")}
    part = context.Process(
        target=write_part,
        args=(job.names(), filters.as_dict(), split, part_path, database, snapshot, os.getpid(), done, send),
        name="export-part",
    )
    try:
        part.start()
        send.close()
        sink = HashingWriter.over(out)
        own = (lambda count, _total: progress(count + done.value, total)) if progress else None
        with cyclic_gc_paused():
            first = job.writer(job.reader(filters, progress=own, cell=job.cell, fuse=job.fuse, through=split), job.columns, sink)
        while part.is_alive() and not receive.poll(POLL_SECONDS):
            if progress:
                progress(first_clusters + done.value, total)
        rows = _part_rows(part, receive)
        with open(part_path, "rb") as written_part:
            shutil.copyfileobj(written_part, sink, 1 << 20)  # type: ignore[misc]
        return sink.written(first.rows + rows)
    finally:
        if part.is_alive():  # this process failed first: the part is of no use
            part.kill()
            part.join()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part_path)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Rows are millions of short-lived tuples that form no cycle, yet each few hundred of them
    start a collection that walks every tracked object: about a tenth of the export's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _clusters_if_worth_it(filters: ExportFilters) -> int | None:
    if not settings.ARC_EXPORT_TWO_PROCESSES or connection.vendor != "postgresql" or not OWN_SNAPSHOT.get():
        return None
    if filters.as_of is not None:  # ordered by the names then: not split by today's
        return None
    total = filters.clusters().count()
    return total if total >= settings.ARC_EXPORT_PARALLEL_MIN_CLUSTERS else None


def _part_rows(part: Any, receive: Any) -> int:
    """The part's row count, or ExportError with its reason."""
    try:
        outcome = receive.recv()
    except EOFError:  # it died before it could say why
        outcome = ("error", None)
    part.join()
    if outcome[0] != "rows":
        reason = outcome[1] or f"it ended with exit code {part.exitcode}"
        raise ExportError(f"The export's second process failed: {reason}")
    return int(outcome[1])


def write_part(
    names: dict[str, Any],
    filters: dict[str, Any],
    after: Key,
    path: str,
    database: dict[str, Any],
    snapshot: str,
    parent: int,
    done: Any,
    send: Any,
) -> None:
    """The part process: the clusters after `after`, read in the parent's snapshot and written
    without a header to `path`; sends ("rows", n) or ("error", message) to the parent."""
    try:
        import django

        django.setup()
        from django.db import transaction

        from posture.exports.filters import ExportFilters

        connection.settings_dict.update(database)  # the parent's database (a test database too)
        job = LineExport.named(names)

        def beat(count: int, _total: int) -> None:
            if os.getppid() != parent:  # the parent died: nobody will read the part
                raise ExportError("the export's first process is gone")
            done.value = count

        with transaction.atomic(), open(path, "wb") as out:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            rows = job.reader(ExportFilters.parse(filters), progress=beat, cell=job.cell, fuse=job.fuse, after=after)
            with cyclic_gc_paused():
                written = job.writer(rows, job.columns, out, header=False)
        send.send(("rows", written.rows))
    except BaseException as exc:  # noqa: BLE001 - told to the parent, which fails the export
        log.warning("export part failed: %s: %s", type(exc).__name__, exc)
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
