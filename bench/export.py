"""Export speed and memory on PostgreSQL: the findings CSV and the whole evidence bundle.

    python bench/export.py --clusters 50000

The fleet is collected once from the emulator (quota off, not timed) and evaluated by its scan.
Each export then runs as `manage.py export …` in a child process of its own, as the CLI or a
worker would; its peak RSS is the child's ru_maxrss (os.wait4): its largest process, the export's
second process included (posture/exports/parallel.py). `tree_pss_mb` is the peak of their
proportional set sizes summed (shared pages counted once), sampled every 50 ms: the memory the
export occupies whatever its number of processes. `seconds` is the export itself
(its audit row, created to finished), `process_s` the child's wall time, Django's start included.
The last two lines read `… rows=… rows_per_s=… peak_rss_mb=… tree_pss_mb=…`: findings CSV, then
the bundle (rows: the findings it holds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, process_tree, scanned_bench  # noqa: E402


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class TreePss:
    """The peak of the summed PSS of a process and its descendants, sampled."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stopped = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stopped.wait(0.05):
            self.peak = max(self.peak, sum(pss_mb(pid) for pid in process_tree(self.pid)))

    def stop(self) -> float:
        self.stopped.set()
        self.thread.join()
        return self.peak


def timed_export(env: dict[str, str], output: Path, *args: str) -> tuple[float, float, float]:
    """Runs one export in a child process: (wall seconds, peak RSS of its largest process and
    of the PSS of all its processes together, in MiB)."""
    command = [sys.executable, "manage.py", "export", *args, "--output", str(output)]
    began = time.monotonic()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree = TreePss(child.pid)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - began
    tree_mb = tree.stop()
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{errors}")
    return seconds, usage.ru_maxrss / 1024, tree_mb  # Linux: KiB


def main() -> None:
    args, work = scanned_bench(__doc__, "bench-export-")
    env = args.env
    from django.db import connection

    from posture.models import Export

    with connection.cursor() as cursor:  # what autovacuum does after a scan's bulk writes (as bench/web.py)
        cursor.execute("VACUUM ANALYZE")

    lines = []
    try:
        for label, kind, fmt in (("findings_csv", "findings", "csv"), ("bundle", "bundle", "zip")):
            output = work / f"{label}.{fmt}"
            process_s, peak_mb, tree_mb = timed_export(env, output, kind, "--format", fmt)
            export = Export.objects.filter(kind=kind, format=fmt).latest("created_at")
            seconds = (export.finished_at - export.created_at).total_seconds()
            rows = export.rows or 0
            print(f"{label}: {output.stat().st_size / 2**20:.0f} MiB in {process_s:.1f} s (process)", flush=True)
            lines.append(
                f"{label} rows={rows} seconds={seconds:.1f} process_s={process_s:.1f} "
                f"rows_per_s={rows / seconds:.0f} peak_rss_mb={peak_mb:.0f} tree_pss_mb={tree_mb:.0f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
