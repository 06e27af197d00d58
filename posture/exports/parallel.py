"""Large findings exports in CSV and JSON Lines, written by two processes at once.

Why: such an export is bound by Python (building and joining rows), not by PostgreSQL, so one
process uses one core. A second process (`python -m posture.exports.part_process`) writes the
later clusters (by name, then pk) while this one writes the earlier ones; this one then appends
the part. Both read one snapshot of the database (`pg_export_snapshot()` here, `SET TRANSACTION
SNAPSHOT` there), so the bytes are exactly those one process would write, and a scan committing
meanwhile changes neither.

Only where that holds and pays: PostgreSQL; the export's read-only snapshot transaction opened by
the export itself (run.one_snapshot: an outer transaction may hold writes another session cannot
see); at least ARC_EXPORT_PARALLEL_MIN_ROWS rows (a process takes about a second to start, and
the web's streamed exports stay far below); ARC_EXPORT_TWO_PROCESSES=false turns it off.

The part is a subprocess, not a multiprocessing child: Celery's prefork workers are daemonic and
may not have those, and a fork would share this process's database socket. It writes to an
unnamed temporary file it inherits, so a crash of either process leaves no file behind; it gives
up on a lock it would wait for (lock_timeout), since this process waiting for it is a wait
PostgreSQL's deadlock detector cannot see; and it stops when this process is gone.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.utils.module_loading import import_string

from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.rows import Key, Progress
from posture.exports.writers import HashingWriter, Written

log = logging.getLogger(__name__)

PART_MODULE = "posture.exports.part_process"
FIRST_SHARE = 0.54  # this process starts about a second before the part, which it then appends
PART_LOCK_TIMEOUT = "30s"
# Set by run.one_snapshot while an export reads in the repeatable-read transaction it opened.
OWN_SNAPSHOT: ContextVar[bool] = ContextVar("own_snapshot", default=False)


@dataclass(frozen=True)
class LineExport:
    """The functions both processes write rows with: a reader taking cell=, fuse=, after= and
    through=, and a line writer taking header=. The part gets them by name."""

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
            "columns": list(self.columns),
            "cell": name(self.cell),
            "fuse": name(self.fuse),
        }

    @classmethod
    def named(cls, names: dict[str, Any]) -> LineExport:
        found = {key: import_string(value) for key, value in names.items() if key != "columns"}
        return cls(columns=tuple(names["columns"]), **found)


def write_in_parts(job: LineExport, filters: ExportFilters, out: BinaryIO, *, progress: Progress | None) -> Written | None:
    """The export written by two processes, or None when it should be written by one."""
    clusters = _clusters_if_worth_it(filters)
    if clusters is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    first_clusters = int(clusters * FIRST_SHARE)
    split: Key = tuple(filters.clusters().order_by("name", "pk").values_list("name", "pk")[first_clusters - 1])  # type: ignore[assignment]
    with tempfile.TemporaryFile(prefix="arc-export-part-") as part_file:
        request = {
            "names": job.names(),
            "filters": filters.as_dict(),
            "after": list(split),
            "database": connection.settings_dict["NAME"],  # the rest comes from the environment
            "snapshot": snapshot,
            "parent": os.getpid(),
            "fd": part_file.fileno(),
        }
        part = start_part(request)
        try:
            report = PartReport(part)
            sink = HashingWriter.over(out)
            own = (lambda count, _total: progress(count + report.done(), clusters)) if progress else None
            with cyclic_gc_paused():
                first = job.writer(job.reader(filters, progress=own, cell=job.cell, fuse=job.fuse, through=split), job.columns, sink)
            if progress:
                progress(first_clusters + report.done(), clusters)
            rows = report.rows()
            part_file.seek(0)
            shutil.copyfileobj(part_file, sink, 1 << 20)  # type: ignore[misc]
            log.info("export written in two processes: %d rows here, %d by the part (pid %d)", first.rows, rows, part.pid)
            return sink.written(first.rows + rows)
        finally:
            if part.poll() is None:  # this process failed first: the part is of no use
                part.kill()
                part.wait()


def start_part(request: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if settings.SETTINGS_MODULE:  # else (settings configured in code) the environment names it
        env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(settings.BASE_DIR), env.get("PYTHONPATH"))))
    part = subprocess.Popen(
        [sys.executable, "-m", PART_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(request["fd"],), env=env
    )
    assert part.stdin is not None  # noqa: S101 - PIPE
    part.stdin.write(json.dumps(request).encode())
    part.stdin.close()
    return part


class PartReport:
    """What the part says on its stdout, one line each: `done N` (clusters), then `rows N` or
    `error MESSAGE`. Read without blocking while this process writes its own part."""

    def __init__(self, part: subprocess.Popen[bytes]) -> None:
        self.part, self.pending, self.clusters, self.outcome = part, b"", 0, ""
        assert part.stdout is not None  # noqa: S101 - PIPE
        self.stream: IO[bytes] = part.stdout
        os.set_blocking(self.stream.fileno(), False)

    def done(self) -> int:
        with contextlib.suppress(BlockingIOError):
            self._take(os.read(self.stream.fileno(), 1 << 16))
        return self.clusters

    def rows(self) -> int:
        """The part's row count once it has ended, or ExportError with its reason."""
        os.set_blocking(self.stream.fileno(), True)
        self._take(self.stream.read())
        code = self.part.wait()
        kind, _, said = self.outcome.partition(" ")
        if code == 0 and kind == "rows":
            return int(said)
        reason = said if kind == "error" else f"it ended with exit code {code}"
        raise ExportError(f"The export's second process failed: {reason}")

    def _take(self, data: bytes | None) -> None:
        *lines, self.pending = (self.pending + (data or b"")).split(b"\n")
        for line in lines:
            kind, _, value = line.decode(errors="replace").partition(" ")
            if kind == "done":
                self.clusters = int(value)
            elif kind in ("rows", "error"):
                self.outcome = f"{kind} {value}"


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
    clusters = filters.clusters().count()
    enough = clusters >= 2 and clusters * len(filters.controls()) >= settings.ARC_EXPORT_PARALLEL_MIN_ROWS
    return clusters if enough else None


def write_part(request: dict[str, Any], report: IO[str]) -> int:
    """The part process's work, once Django is set up: the clusters after `after`, read in the
    parent's snapshot and written without a header to the inherited file. Returns the exit code."""
    try:
        with os.fdopen(request["fd"], "wb") as out:
            connection.settings_dict["NAME"] = request["database"]  # a test database, say
            job = LineExport.named(request["names"])

            def beat(count: int, _total: int) -> None:
                if os.getppid() != request["parent"]:  # the export's process is gone: nobody reads the part
                    raise ExportError("the export's first process is gone")
                print(f"done {count}", file=report, flush=True)

            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    cursor.execute("SET TRANSACTION SNAPSHOT %s", [request["snapshot"]])
                    cursor.execute(f"SET LOCAL lock_timeout = '{PART_LOCK_TIMEOUT}'")
                filters = ExportFilters.parse(request["filters"])
                rows = job.reader(filters, progress=beat, cell=job.cell, fuse=job.fuse, after=tuple(request["after"]))
                with cyclic_gc_paused():
                    written = job.writer(rows, job.columns, out, header=False)
        print(f"rows {written.rows}", file=report, flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - told to the parent, which fails the export with it
        message = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
        print(f"error {message}", file=report, flush=True)
        return 1
