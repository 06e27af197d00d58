"""The single registry of exports: kind × format → row reader, columns, writer, content type and
file extension. Later kinds (report, bundle, oscal) register here too."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.rows import FINDINGS_COLUMNS, SCORECARD_COLUMNS, Progress, findings_rows, scorecard_rows
from posture.exports.writers import Written, write_csv, write_jsonl, write_xlsx

Reader = Callable[..., Iterator[dict[str, Any]]]  # (filters, *, progress) -> rows
Writer = Callable[[Iterable[dict[str, Any]], Sequence[str], BinaryIO], Written]


@dataclass(frozen=True)
class Format:
    name: str
    writer: Writer
    content_type: str
    extension: str


@dataclass(frozen=True)
class Kind:
    name: str
    reader: Reader
    columns: tuple[str, ...]


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

    def write(self, filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written:
        return self.format.writer(self.kind.reader(filters, progress=progress), self.kind.columns, out)


CSV = Format("csv", write_csv, "text/csv; charset=utf-8", "csv")
JSONL = Format("jsonl", write_jsonl, "application/jsonl; charset=utf-8", "jsonl")
XLSX = Format("xlsx", write_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
FINDINGS = Kind("findings", findings_rows, FINDINGS_COLUMNS)
SCORECARDS = Kind("scorecards", scorecard_rows, SCORECARD_COLUMNS)

EXPORTS: dict[tuple[str, str], ExportType] = {
    (kind.name, fmt.name): ExportType(kind, fmt) for kind in (FINDINGS, SCORECARDS) for fmt in (CSV, JSONL, XLSX)
}


def register(export: ExportType) -> None:
    """Add a kind × format (the reports, bundle and OSCAL register theirs)."""
    EXPORTS[(export.kind.name, export.format.name)] = export


def kinds() -> list[str]:
    return list(dict.fromkeys(kind for kind, _ in EXPORTS))


def formats(kind: str) -> list[str]:
    return [fmt for k, fmt in EXPORTS if k == kind]


def export_type(kind: str, fmt: str) -> ExportType:
    found = EXPORTS.get((kind, fmt))
    if found is None:
        if kind not in kinds():
            raise ExportError(f"Unknown export {kind!r} (one of {', '.join(kinds())}).")
        raise ExportError(f"No {fmt!r} format for {kind} (one of {', '.join(formats(kind))}).")
    return found
