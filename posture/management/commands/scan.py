from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import InterfaceError, OperationalError, connection

from posture.models import Scan, Scope
from posture.scans.progress import ScanProgress, scan_progress
from posture.scans.request import scan_request

EXIT = {Scan.State.SUCCEEDED: 0, Scan.State.PARTIAL: 2, Scan.State.FAILED: 1}
# `--wait` rides out a database outage (a restart, a failover) this long before it gives up.
OUTAGE_LIMIT_SECONDS = 300
OUTAGE_RETRY_SECONDS = 2.0


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


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
        outage: float | None = None  # when the database stopped answering
        while True:
            try:
                progress = scan_progress(scan.pk)
            except (OperationalError, InterfaceError) as exc:
                # A restarting database: the workers go on once it is back, and so does this.
                connection.close()
                now = time.monotonic()
                outage = now if outage is None else outage
                if (timeout and now - started > timeout) or now - outage > OUTAGE_LIMIT_SECONDS:
                    self.stderr.write("")
                    raise CommandError(
                        f"Gave up waiting for scan {scan.pk}: the database has been unreachable for {now - outage:.0f} s "
                        f"({first_line(exc)}). The scan goes on in the workers; see its state in the UI or run this again."
                    ) from exc
                self.stderr.write(f"database unreachable, retrying: {first_line(exc)}")
                time.sleep(OUTAGE_RETRY_SECONDS)
                continue
            if outage is not None:
                self.stderr.write("database reachable again")
                outage = None
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
        scan = Scan.objects.select_related("scope").get(pk=scan.pk)
        if scan.error:
            self.stderr.write(f"{scan.state}: {scan.error}")
        self.stdout.write(f"Scan {scan.pk} of {scan.scope.name}: {scan.state}, {scan.clusters:,} clusters.")
        return EXIT.get(scan.state, 1)
