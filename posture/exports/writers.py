"""One writer per format: rows (dicts) in, bytes out to a binary file object, hashed on the way.

CSV and Excel cells that begin with = + - @, a tab or a carriage return are neutralised with a
leading apostrophe (OWASP's CSV-injection advice): a spreadsheet would otherwise run them as
formulas. JSON Lines is data for programs and keeps every value exact.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import xlsxwriter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = frozenset(FORMULA_STARTS)
FLUSH_ROWS = 500


@dataclass(frozen=True)
class Written:
    rows: int
    sha256: str
    size: int


class HashingWriter:
    """Counts and hashes what passes to `out`. It tells but cannot seek, so zipfile (under
    xlsxwriter) writes the archive as a stream."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.out.flush()

    def written(self, rows: int) -> Written:
        return Written(rows, self.digest.hexdigest(), self.size)


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula, made inert; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: BinaryIO) -> Written:
    """RFC 4180 (CRLF line ends, quoted as needed), UTF-8, a header row."""
    sink = HashingWriter(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    values = _getter(columns)
    count = 0
    for row in rows:
        # neutralise(), inlined: this loop runs once per finding (hundreds of thousands of times).
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in FORMULA_FIRST else v for v in values(row)])
        count += 1
        if count % FLUSH_ROWS == 0:
            _drain(buffer, sink)
    _drain(buffer, sink)
    return sink.written(count)


def _getter(columns: Sequence[str]) -> Any:
    """row → its values in column order, as a tuple even for one column."""
    if len(columns) == 1:
        return lambda row: (row[columns[0]],)
    return operator.itemgetter(*columns)


def _drain(buffer: io.StringIO, sink: HashingWriter) -> None:
    sink.write(buffer.getvalue().encode("utf-8"))
    buffer.seek(0)
    buffer.truncate()


def write_jsonl(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: BinaryIO) -> Written:
    """One JSON object per line, keys in column order, values exact."""
    sink = HashingWriter(out)
    count = 0
    for row in rows:
        line = json.dumps({c: row[c] for c in columns}, ensure_ascii=False, separators=(",", ":"))
        sink.write(line.encode("utf-8") + b"\n")
        count += 1
    return sink.written(count)


def write_xlsx(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: BinaryIO) -> Written:
    """One worksheet, written row by row (constant_memory keeps one row in memory). Text stays
    text: no conversion to formulas, links or numbers."""
    sink = HashingWriter(out)
    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = xlsxwriter.Workbook(sink, options)
    sheet = workbook.add_worksheet("export")
    sheet.write_row(0, 0, columns)
    count = 0
    for count, row in enumerate(rows, 1):
        for column, name in enumerate(columns):
            _write_cell(sheet, count, column, row[name])
    workbook.close()
    return sink.written(count)


def _write_cell(sheet: Any, row: int, column: int, value: Any) -> None:
    if value is None or value == "":
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int | float):
        sheet.write_number(row, column, value)
    else:
        sheet.write_string(row, column, neutralise(str(value)))
