"""The export command and service: files, the audit row, formula neutralisation with hostile
cluster names, bad filters and failures that leave nothing behind."""

from __future__ import annotations

import getpass
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from posture.catalog.controls import CONTROLS
from posture.exports import registry
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.registry import ExportType, Kind
from posture.exports.run import export_to_file
from posture.models import Export, Scope
from posture.scans.evaluation import evaluate_scope
from tests.posture.exports_fleet import read_csv, read_jsonl, read_xlsx
from tests.web.conftest import HOSTILE, add_cluster, finished_scan

pytestmark = pytest.mark.django_db
SUB = "11111111-1111-1111-1111-111111111111"
# Names a spreadsheet would run as formulas: the web fleet's hostile ones and one per leading character.
FORMULAS = (HOSTILE[2], "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\tTAB", "\rCR")
PLAIN = ("alpha", "bravo")


@pytest.fixture
def hostile_fleet(db: Any) -> Scope:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    scan = finished_scan(scope, [SUB])
    for n, name in enumerate((*FORMULAS, *PLAIN)):
        add_cluster(scope, scan, n, name=name, tags={name: name})
    evaluate_scope(scope.pk, scan=scan)
    return scope


def export_cli(tmp_path: Path, kind: str, fmt: str, *filters: str, stdout: Any = None) -> Path:
    output = tmp_path / f"out.{fmt}"
    call_command("export", kind, "--format", fmt, "--output", str(output), *filters, stdout=stdout or io.StringIO())
    return output


def test_csv_and_excel_neutralise_formulas_and_json_lines_keeps_them(hostile_fleet: Scope, tmp_path: Path) -> None:
    csv_names = {row["cluster"] for row in read_csv(export_cli(tmp_path, "scorecards", "csv").read_bytes())}
    xlsx_rows = read_xlsx(export_cli(tmp_path, "scorecards", "xlsx").read_bytes())
    jsonl_rows = read_jsonl(export_cli(tmp_path, "scorecards", "jsonl").read_bytes())
    neutralised = {"'" + name for name in FORMULAS} | set(PLAIN)
    assert csv_names == neutralised
    assert {row["cluster"] for row in xlsx_rows} == neutralised
    assert {row["tags"] for row in xlsx_rows} == {f"'{name}={name}" for name in FORMULAS} | {f"{n}={n}" for n in PLAIN}
    assert {row["cluster"] for row in jsonl_rows} == set(FORMULAS) | set(PLAIN)


def test_excel_cells_stay_text_never_formulas_or_links(hostile_fleet: Scope, tmp_path: Path) -> None:
    import openpyxl

    sheet = openpyxl.load_workbook(export_cli(tmp_path, "findings", "xlsx", "--control", "ARC-NP-01")).active
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row if cell.value is not None]
    assert cells and all(cell.data_type in ("s", "n") for cell in cells)
    assert not any(cell.hyperlink for cell in cells)


def test_the_audit_row_records_who_what_filters_rows_and_the_files_sha256(hostile_fleet: Scope, tmp_path: Path) -> None:
    output = export_cli(tmp_path, "findings", "csv", "--status", "fail", "--status", "unknown", "--scope", "corp")
    export = Export.objects.get()
    data = output.read_bytes()
    assert (export.kind, export.format, export.state) == ("findings", "csv", Export.State.SUCCEEDED)
    assert export.requested_by is None and export.requested_by_name == getpass.getuser()
    assert export.filters == {"scope": "corp", "status": ["fail", "unknown"]}
    assert export.rows == len(read_csv(data)) > 0
    assert (export.sha256, export.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert export.finished_at is not None and export.file_name == ""


def test_an_export_by_a_user_records_the_user(hostile_fleet: Scope, analyst: Any) -> None:
    out = io.BytesIO()
    export = export_to_file("scorecards", "jsonl", ExportFilters.parse({}), out, user=analyst)
    assert (export.requested_by, export.requested_by_name) == (analyst, analyst.username)
    assert export.rows == len(FORMULAS) + len(PLAIN) and export.sha256 == hashlib.sha256(out.getvalue()).hexdigest()


def test_findings_count_clusters_times_controls(hostile_fleet: Scope, tmp_path: Path) -> None:
    rows = read_csv(export_cli(tmp_path, "findings", "csv").read_bytes())
    assert len(rows) == (len(FORMULAS) + len(PLAIN)) * len(CONTROLS)


def test_bad_filters_exit_with_every_problem_named_and_no_file(hostile_fleet: Scope, tmp_path: Path) -> None:
    with pytest.raises(CommandError) as failure:
        export_cli(tmp_path, "findings", "csv", "--control", "ARC-NOPE", "--status", "broken", "--grade", "Z", "--severity", "dire")
    message = str(failure.value)
    for named in ("control 'ARC-NOPE'", "status 'broken'", "grade 'Z'", "severity 'dire'"):
        assert named in message
    with pytest.raises(CommandError, match="unknown section '9.9' of framework 'cis-k8s'"):
        export_cli(tmp_path, "findings", "csv", "--framework", "cis-k8s", "--section", "9.9")
    with pytest.raises(CommandError, match="unknown framework 'iso'"):
        export_cli(tmp_path, "findings", "csv", "--framework", "iso")
    with pytest.raises(CommandError, match="unknown scope 'nowhere'"):
        export_cli(tmp_path, "findings", "csv", "--scope", "nowhere")
    assert list(tmp_path.iterdir()) == [] and not Export.objects.exists()


def test_unknown_filter_names_are_refused() -> None:
    with pytest.raises(ExportError, match="unknown filter 'colour'"):
        ExportFilters.parse({"colour": "red", "status": "fail"})
    with pytest.raises(ExportError, match="section '5.3.1' needs its framework"):
        ExportFilters.parse({"section": "5.3.1"})


def test_a_failed_export_is_recorded_and_leaves_the_previous_file_untouched(
    hostile_fleet: Scope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rows_then_full_disk(filters: ExportFilters, *, progress: Any = None) -> Any:
        yield from list(registry.SCORECARDS.reader(filters))[:2]
        raise OSError(28, "No space left on device")

    failing = ExportType(Kind("scorecards", rows_then_full_disk, registry.SCORECARDS.columns), registry.CSV)
    monkeypatch.setitem(registry.EXPORTS, ("scorecards", "csv"), failing)
    output = tmp_path / "out.csv"
    output.write_bytes(b"earlier export\r\n")
    with pytest.raises(OSError, match="No space left"):
        export_cli(tmp_path, "scorecards", "csv")
    assert output.read_bytes() == b"earlier export\r\n" and list(tmp_path.iterdir()) == [output]
    export = Export.objects.get()
    assert export.state == Export.State.FAILED and "No space left on device" in export.error and export.sha256 == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_sees_a_progress_bar_and_a_pipe_does_not(hostile_fleet: Scope, tmp_path: Path) -> None:
    terminal, pipe = Terminal(), io.StringIO()
    export_cli(tmp_path, "findings", "jsonl", stdout=terminal)
    export_cli(tmp_path, "findings", "jsonl", stdout=pipe)
    clusters = len(FORMULAS) + len(PLAIN)
    assert f"\r[{'#' * 30}] clusters {clusters}/{clusters}" in terminal.getvalue()
    assert "\r" not in pipe.getvalue() and "sha256" in pipe.getvalue()


def test_findings_read_a_fixed_number_of_queries_per_chunk_of_clusters(hostile_fleet: Scope, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from posture.exports import rows

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            export_to_file("findings", "csv", ExportFilters.parse({}), io.BytesIO())
        return len(captured)

    monkeypatch.setattr(rows, "CHUNK_CLUSTERS", 100)
    small = queries()
    scope = Scope.objects.get()
    scan = finished_scan(scope, [SUB])
    for n in range(20, 60):
        add_cluster(scope, scan, n)
    evaluate_scope(scope.pk, scan=scan)
    assert queries() == small  # 8 or 48 clusters: one chunk, the same queries
    monkeypatch.setattr(rows, "CHUNK_CLUSTERS", 10)
    assert queries() == small + 4 * 2  # 5 chunks instead of 1: the chunk page and its results, per chunk
