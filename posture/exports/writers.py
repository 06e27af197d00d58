"""One writer per format: rows (tuples in column order) in, bytes out to a binary file object,
hashed on the way.

CSV and Excel cells that begin with = + - @, a tab or a carriage return are neutralised with a
leading apostrophe (OWASP's CSV-injection advice): a spreadsheet would otherwise run them as
formulas. JSON Lines is data for programs and keeps every value exact.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any, BinaryIO

import xlsxwriter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = frozenset(FORMULA_STARTS)
FLUSH_ROWS = 2000
CRLF = "\r\n"
NEEDS_QUOTES = re.compile('[,"\r\n]')  # QUOTE_MINIMAL: the delimiter, the quote and the line end


@dataclass(frozen=True)
class Written:
    rows: int
    sha256: str
    size: int


class HashingWriter:
    """Counts and hashes what passes to `out`. It tells but cannot seek, so zipfile (under
    xlsxwriter) writes the archive as a stream."""

    @classmethod
    def over(cls, out: Any) -> HashingWriter:
        """`out` itself when it hashes already (an export in parts goes on hashing its second
        part), else a new one."""
        return out if isinstance(out, HashingWriter) else cls(out)

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


@lru_cache(maxsize=4096, typed=True)
def csv_cell(value: Any) -> str:
    """An exact value as the field of a CSV record that holds it: text neutralised, None blank,
    numbers as the csv module writes them; quoted as needed. Cached: statuses, reasons and
    details repeat across rows."""
    if isinstance(value, str):
        return csv_field("'" + value if value[:1] in FORMULA_FIRST else value)
    return "" if value is None else csv_field(str(value))


def csv_field(text: str) -> str:
    """`text` as one field of an RFC 4180 record: as it is, or quoted with its quotes doubled when
    it holds the delimiter, a quote or a line end. That is the csv module's QUOTE_MINIMAL rule
    (tests/posture/test_exports_findings.py holds them equal on hostile text), written here
    because making a csv.writer per distinct value was a tenth of a findings export."""
    if not NEEDS_QUOTES.search(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def csv_joined(fields: tuple[str, ...]) -> tuple[str, ...]:
    """Adjacent fields made by csv_cell, joined once: one segment that write_csv_fields joins
    with the rest of its row (a reader's `fuse` for CSV)."""
    return (",".join(fields),)


def write_csv_fields(rows: Iterable[Sequence[str]], columns: Sequence[str], out: BinaryIO, *, header: bool = True) -> Written:
    """RFC 4180 (CRLF line ends, quoted as needed), UTF-8, a header row. Rows must be fields made by
    csv_cell (neutralised and quoted once per distinct value, not per row: pass `cell=csv_cell` to
    the reader); raw text here would go out neither neutralised nor quoted. Joined in batches:
    running every row's text through csv.writer took a third of a findings export. Without
    `header`: the records alone, the later part of an export in parts."""
    sink = HashingWriter.over(out)
    if header:
        sink.write((",".join(map(csv_field, columns)) + CRLF).encode("utf-8"))
    count = 0
    pending = iter(rows)
    while batch := list(islice(pending, FLUSH_ROWS)):
        sink.write(("".join([",".join(row) + CRLF for row in batch])).encode("utf-8"))
        count += len(batch)
    return sink.written(count)


def write_jsonl(rows: Iterable[Sequence[Any]], columns: Sequence[str], out: BinaryIO, *, header: bool = True) -> Written:
    """One JSON object per line, keys in column order, values exact (no header: `header` is
    for the signature every line writer shares)."""
    sink = HashingWriter.over(out)
    count = 0
    for row in rows:
        line = json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False, separators=(",", ":"))
        sink.write(line.encode("utf-8") + b"\n")
        count += 1
    return sink.written(count)


# Excel's limits: rows per worksheet (the header takes one) and characters per cell.
SHEET_ROWS = 1_048_576
CELL_CHARS = 32_767
CUT_NOTE = " … [cut at Excel's cell limit; the CSV and JSON Lines hold the whole value]"


def write_xlsx(rows: Iterable[Sequence[Any]], columns: Sequence[str], out: BinaryIO) -> Written:
    """Worksheets written row by row (constant_memory keeps one row in memory), each with the
    header; past a sheet's last row the rows go on in the next sheet, never dropped. Text stays
    text: no conversion to formulas, links or numbers."""
    sink = HashingWriter(out)
    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    workbook = xlsxwriter.Workbook(sink, options)
    count = 0
    sheet, line = None, SHEET_ROWS
    for row in rows:
        count += 1
        if line == SHEET_ROWS:
            sheet = workbook.add_worksheet("export" if sheet is None else f"export {len(workbook.worksheets()) + 1}")
            sheet.write_row(0, 0, columns)
            line = 1
        for column, value in enumerate(row):
            _write_cell(sheet, line, column, value)
        line += 1
    if sheet is None:
        workbook.add_worksheet("export").write_row(0, 0, columns)
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
        text = neutralise(str(value))
        if len(text) > CELL_CHARS:  # said in the cell, not cut silently
            text = text[: CELL_CHARS - len(CUT_NOTE)] + CUT_NOTE
        sheet.write_string(row, column, text)
