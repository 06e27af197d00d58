from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.models import Scan, Scope
from posture.progress import ScanProgress, scan_progress
from posture.scanning import scan_request

EXIT = {Scan.State.SUCCEEDED: 0, Scan.State.PARTIAL: 2, Scan.State.FAILED: 1}


def bar(progress: ScanProgress, width: int = 30) -> str:
    filled = int(progress.fraction * width)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.state:<10} "
        f"batches {progress.batches_finished}/{progress.batches_total} · clusters {progress.clusters:,} · "
        f"requests {progress.requests:,} · rows {progress.rows:,} · quota wait {progress.quota_wait_seconds:.1f} s"
    )


class Command(BaseCommand):
    help = "Start a scan of one scope (or of every enabled scope) and optionally wait for it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scope", help="Scope name; default: every enabled scope")
        parser.add_argument("--wait", action="store_true", help="Show progress until the scan ends")
        parser.add_argument("--timeout", type=float, default=0, help="Give up waiting after this many seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = Scope.objects.filter(name=options["scope"]) if options["scope"] else Scope.objects.filter(enabled=True)
        if not scopes:
            raise CommandError(f"No scope named {options['scope']!r}." if options["scope"] else "No enabled scope.")
        scans = []
        for scope in scopes:
            scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
            verb = "started" if created else "already running"
            self.stdout.write(f"Scan {scan.pk} of {scope.name} {verb}.")
            scans.append(scan)
        if not options["wait"]:
            return
        worst = 0
        for scan in scans:
            worst = max(worst, self._wait(scan, options["timeout"]))
        if worst:
            sys.exit(worst)

    def _wait(self, scan: Scan, timeout: float) -> int:
        started = time.monotonic()
        interactive = self.stderr.isatty()
        last = ""
        while True:
            progress = scan_progress(scan.pk)
            line = bar(progress)
            if interactive:
                self.stderr.write(f"\r{line}", ending="")
            elif line != last:  # a log (cron, CI) gets a line per change, not one per poll
                self.stderr.write(line)
                last = line
            if progress.state in Scan.FINISHED_STATES:
                break
            if timeout and time.monotonic() - started > timeout:
                self.stderr.write("")
                raise CommandError(f"Scan {scan.pk} still {progress.state} after {timeout:.0f} s.")
            time.sleep(0.5)
        if interactive:
            self.stderr.write("")
        scan.refresh_from_db()
        if scan.error:
            self.stderr.write(f"{scan.state}: {scan.error}")
        self.stdout.write(f"Scan {scan.pk} of {scan.scope.name}: {scan.state}, {scan.clusters:,} clusters.")
        return EXIT.get(scan.state, 1)
