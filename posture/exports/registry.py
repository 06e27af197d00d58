"""The single registry of exports: kind × format → what writes it, its content type and file
extension. Row kinds (findings, scorecards) pair a row reader with a writer per format; documents
(a benchmark report, the evidence bundle) are written whole by one function. Later kinds (oscal)
register here too. Every entry offers check(filters), write(filters, out, progress=),
content_type and extension."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from posture.exports.bundle_build import write_bundle
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.oscal import OSCAL_CONTENT_TYPE, write_oscal
from posture.exports.parallel import LineExport, write_in_parts
from posture.exports.report_export import check_report, write_report_html, write_report_pdf
from posture.exports.rows import (
    FINDINGS_COLUMNS,
    SCORECARD_COLUMNS,
    Cell,
    Fuse,
    Progress,
    Row,
    exact,
    findings_rows,
    scorecard_rows,
    separate,
)
from posture.exports.writers import Written, csv_cell, csv_joined, write_csv_fields, write_jsonl, write_xlsx

Reader = Callable[..., Iterator[Row]]  # (filters, *, progress[, cell]) -> rows
Writer = Callable[[Iterable[Row], Sequence[str], BinaryIO], Written]
Build = Callable[..., Written]  # (filters, out, *, progress) -> Written


class Exporter(Protocol):
    @property
    def content_type(self) -> str: ...

    @property
    def extension(self) -> str: ...

    def check(self, filters: ExportFilters) -> None: ...

    @property
    def rebuilds_past(self) -> bool: ...

    def write(self, filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written: ...


@dataclass(frozen=True)
class Format:
    """`cell`: what the reader makes of each value for `writer` (CSV takes neutralised text);
    `fuse`: what it makes of adjacent cells (CSV's writer takes them joined)."""

    name: str
    writer: Writer
    content_type: str
    extension: str
    cell: Cell = exact
    fuse: Fuse = separate
    lines: bool = False  # a header then records: written in parts, the parts' records appended


@dataclass(frozen=True)
class Kind:
    """`makes_cells`: the reader takes `cell=` and applies it once per cluster and per control
    (the findings' speed); otherwise it yields exact rows and each value is mapped here.
    `fuses`: the reader also takes the format's `fuse=`, and `after=`/`through=` (a large
    export in a line format is then written in two parts at once)."""

    name: str
    reader: Reader
    columns: tuple[str, ...]
    makes_cells: bool = False
    fuses: bool = False
    rebuilds_past: bool = False  # honours ExportFilters.as_of


@dataclass(frozen=True)
class ExportType:
    kind: Kind
    format: Format

    @property
    def content_type(self) -> str:
        return self.format.content_type

    @property
    def extension(self) -> str:
        return self.format.extension

    @property
    def rebuilds_past(self) -> bool:
        return self.kind.rebuilds_past

    def check(self, filters: ExportFilters) -> None:
        """Every filter applies to rows (ExportFilters.parse checked them all); as_of only where
        the kind rebuilds the past."""
        refuse_as_of(filters, self.kind.name, self.kind.rebuilds_past)

    def write(self, filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written:
        cell = self.format.cell
        if self.kind.fuses and self.format.lines:
            job = LineExport(self.kind.reader, self.format.writer, self.kind.columns, cell, self.format.fuse)
            written = write_in_parts(job, filters, out, progress=progress)
            if written is not None:
                return written
        if self.kind.fuses:
            rows = self.kind.reader(filters, progress=progress, cell=cell, fuse=self.format.fuse)
        elif self.kind.makes_cells:
            rows = self.kind.reader(filters, progress=progress, cell=cell)
        else:
            rows = self.kind.reader(filters, progress=progress)
            rows = rows if cell is exact else (tuple(map(cell, row)) for row in rows)
        return self.format.writer(rows, self.kind.columns, out)


@dataclass(frozen=True)
class Document:
    """A kind × format written whole by `build`; `checks` refuses filters it cannot honour, before
    any work or audit row. `rows` in what it returns: what the document counts (see its build)."""

    kind: str
    format: str
    build: Build
    content_type: str
    extension: str
    checks: Callable[[ExportFilters], None] | None = None
    rebuilds_past: bool = False

    def check(self, filters: ExportFilters) -> None:
        refuse_as_of(filters, self.kind, self.rebuilds_past)
        if self.checks:
            self.checks(filters)

    def write(self, filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written:
        self.check(filters)
        return self.build(filters, out, progress=progress)


def refuse_as_of(filters: ExportFilters, kind: str, rebuilds_past: bool) -> None:
    if filters.as_of is not None and not rebuilds_past:
        said = ", ".join(kinds_rebuilding_past())
        raise ExportError(f"{kind} as of a past time is not available yet; these are: {said}.")


CSV = Format("csv", write_csv_fields, "text/csv; charset=utf-8", "csv", csv_cell, csv_joined, lines=True)
JSONL = Format("jsonl", write_jsonl, "application/jsonl; charset=utf-8", "jsonl", lines=True)
XLSX = Format("xlsx", write_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
FINDINGS = Kind("findings", findings_rows, FINDINGS_COLUMNS, makes_cells=True, fuses=True, rebuilds_past=True)
SCORECARDS = Kind("scorecards", scorecard_rows, SCORECARD_COLUMNS, makes_cells=True, rebuilds_past=True)

EXPORTS: dict[tuple[str, str], Exporter] = {
    (kind.name, fmt.name): ExportType(kind, fmt) for kind in (FINDINGS, SCORECARDS) for fmt in (CSV, JSONL, XLSX)
}


def register(export: ExportType | Document) -> None:
    """Add a kind × format."""
    if isinstance(export, Document):
        EXPORTS[(export.kind, export.format)] = export
    else:
        EXPORTS[(export.kind.name, export.format.name)] = export


register(Document("report", "html", write_report_html, "text/html; charset=utf-8", "html", check_report, rebuilds_past=True))
register(Document("report", "pdf", write_report_pdf, "application/pdf", "pdf", check_report, rebuilds_past=True))
register(Document("bundle", "zip", write_bundle, "application/zip", "zip", rebuilds_past=True))
register(Document("oscal", "json", write_oscal, OSCAL_CONTENT_TYPE, "json", rebuilds_past=True))


def kinds_rebuilding_past() -> list[str]:
    """The kinds that can be rebuilt as of a past time (the as_of filter), sorted."""
    return sorted({kind for (kind, _), export in EXPORTS.items() if export.rebuilds_past})


def kinds() -> list[str]:
    return list(dict.fromkeys(kind for kind, _ in EXPORTS))


def formats(kind: str) -> list[str]:
    return [fmt for k, fmt in EXPORTS if k == kind]


def export_type(kind: str, fmt: str) -> Exporter:
    found = EXPORTS.get((kind, fmt))
    if found is None:
        if kind not in kinds():
            raise ExportError(f"Unknown export {kind!r} (one of {', '.join(kinds())}).")
        raise ExportError(f"No {fmt!r} format for {kind} (one of {', '.join(formats(kind))}).")
    return found
