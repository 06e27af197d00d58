from __future__ import annotations

import getpass
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.exports.errors import ExportError
from posture.exports.filters import MULTIPLE, ExportFilters
from posture.exports.registry import EXPORTS, export_type, kinds_rebuilding_past
from posture.exports.run import export_to_file

ROW_KINDS = ("findings", "scorecards")  # their progress counts clusters; documents count steps
FILTERS = (
    "q",
    "scope",
    "subscription",
    "resource_group",
    "location",
    "tag",
    "grade",
    "distribution",
    "infrastructure",
    "connectivity",
    "network_path",
    "control",
    "status",
    "severity",
    "framework",
    "section",
    "as_of",
)
OPTION_NAMES = {"q": "--name-contains"}
HELP = {
    "as_of": f"The posture as it stood then, rebuilt from the history, e.g. 2026-11-01T00:00Z ({', '.join(kinds_rebuilding_past())})",
    "q": "Cluster name contains",
}


class Command(BaseCommand):
    requires_system_checks: list[str] = []  # an export needs no URLconf or template checks (a second and 16 MB less)
    help = (
        "Export findings or scorecards (csv, jsonl, xlsx), a benchmark report (html, pdf; --framework required), the "
        "signed evidence bundle (zip) or OSCAL assessment results (json), with the filters of the clusters and benchmark "
        "pages; --as-of rebuilds the posture as it stood then."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted({kind for kind, _ in EXPORTS}))
        parser.add_argument("--format", required=True, choices=sorted({fmt for _, fmt in EXPORTS}))
        parser.add_argument("--output", required=True, help="File to write; replaced only once the export succeeded")
        for name in FILTERS:
            several = name in MULTIPLE
            parser.add_argument(
                OPTION_NAMES.get(name, "--" + name.replace("_", "-")),
                dest=name,
                action="append" if several else "store",
                help=HELP.get(name, "Repeat or separate with commas for several" if several else None),
            )
        parser.add_argument("--removed", action="store_true", help="Include removed clusters")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            filters = ExportFilters.parse({name: options[name] for name in (*FILTERS, "removed") if options[name]})
            export_type(options["kind"], options["format"]).check(filters)
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        output = Path(options["output"])
        if not output.parent.is_dir():
            raise CommandError(f"No directory {str(output.parent)!r} for the output.")
        # A temporary file beside the output, renamed over it on success: a failed export leaves
        # neither a half-written file nor a damaged earlier one.
        handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                progress = self._progress_bar("clusters" if options["kind"] in ROW_KINDS else "steps")
                export = export_to_file(options["kind"], options["format"], filters, out, actor=_os_user(), progress=progress)
            os.replace(temporary, output)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        finally:
            if self.stdout.isatty():
                self.stdout.write("")  # end the progress line
        self.stdout.write(f"{export.rows:,} rows, {export.size:,} bytes, sha256 {export.sha256} → {output} (export {export.pk})")

    def _progress_bar(self, unit: str) -> Any:
        # A plain \r line, like `scan --wait`: no progress library is a runtime dependency
        # (rich comes only with the dev tools). Logs and pipes get no bar.
        if not self.stdout.isatty():
            return None

        def show(done: int, total: int, width: int = 30) -> None:
            filled = int(width * done / total) if total else width
            self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {unit} {done:,}/{total:,}", ending="")

        return show


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's arbitrary user)
        return f"uid {os.getuid()}"
