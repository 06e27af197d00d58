"""Bulk writes at fleet scale.

On PostgreSQL rows are streamed with COPY into a temporary table and merged with one
INSERT … ON CONFLICT or UPDATE … FROM: tens of thousands of rows a second, where Django's
bulk_update (a CASE per field per row) manages a few hundred. Other databases (the embedded
SQLite default, small fleets) use the ORM. Callers pass plain dicts keyed by column name.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models

CHUNK = 1000


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _column(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).column


class RawJson(str):
    """A value already serialized as JSON (written as is into a json/jsonb column)."""


ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def copy_supported() -> bool:
    return _pg()


# Autovacuum analyzes a table only after a delay; queries planned before that, on a table just
# filled by COPY, would be planned for an empty table.
ANALYZE_AFTER_ROWS = 5000


def analyze(*models_: type[models.Model]) -> None:
    """Refresh the planner's statistics after a large bulk write (sampled, so cheap)."""
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE " + ", ".join(f'"{m._meta.db_table}"' for m in models_))


def relax_durability() -> None:
    """For writes of derived data (verdicts, scores) that the next evaluation recomputes anyway:
    commit without waiting for the WAL flush. Still atomic; a crash can only lose the last
    moments of such writes, never half of them."""
    if _pg():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def copy_lines(model: type[models.Model], fields: Sequence[str], lines: Iterable[str]) -> None:
    """COPY pre-formatted text lines (tab-separated, in `fields` order) into the model's table."""
    columns = ", ".join(f'"{_column(model, f)}"' for f in fields)
    with connection.cursor() as cursor, cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        block: list[str] = []
        for line in lines:
            block.append(line)
            if len(block) == CHUNK * 5:
                copy.write("\n".join(block) + "\n")
                block = []
        if block:
            copy.write("\n".join(block) + "\n")


def _text(value: Any) -> str:
    """One value in COPY's text format. Formatting rows here is several times faster than
    psycopg's generic write_row, which matters at hundreds of thousands of rows."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value).translate(ESCAPES)


def _write(copy: Any, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    lines = []
    for row in rows:
        lines.append("\t".join([_text(row[name]) for name in fields]))
        if len(lines) == CHUNK:
            copy.write("\n".join(lines) + "\n")
            lines = []
    if lines:
        copy.write("\n".join(lines) + "\n")


def _stage(model: type[models.Model], fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """COPY rows into a temporary table shaped like `fields` of `model`; returns its name."""
    table = f"stage_{model._meta.db_table}"
    columns = ", ".join(f'"{_column(model, f)}"' for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        cursor.execute(f'CREATE TEMPORARY TABLE "{table}" AS SELECT {columns} FROM "{model._meta.db_table}" WITH NO DATA')
        with cursor.cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
            _write(copy, fields, rows)
    return table


def _instance(model: type[models.Model], row: dict[str, Any]) -> models.Model:
    # Rows are keyed by attname (cluster_id, not cluster); pre-serialized JSON is decoded for the ORM.
    return model(**{k: (json.loads(v) if isinstance(v, RawJson) else v) for k, v in row.items()})


def _with_defaults(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Add the model's defaults for NOT NULL columns the caller left out (COPY bypasses them)."""
    missing = [
        f
        for f in model._meta.concrete_fields
        if f.attname not in fields and not f.primary_key and not f.null and (f.has_default() or f.empty_strings_allowed)
    ]
    if not missing:
        return list(fields), list(rows)
    defaults = {f.attname: f.get_default() for f in missing}
    return [*fields, *defaults], [{**defaults, **row} for row in rows]


def insert(model: type[models.Model], fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    fields, rows = _with_defaults(model, fields, rows)
    if not _pg():
        model.objects.bulk_create([_instance(model, r) for r in rows], batch_size=CHUNK)
        return
    columns = ", ".join(f'"{_column(model, f)}"' for f in fields)
    with connection.cursor() as cursor, cursor.cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        _write(copy, fields, rows)


def upsert(
    model: type[models.Model], fields: Sequence[str], rows: Sequence[dict[str, Any]], conflict: Sequence[str], update: Sequence[str]
) -> None:
    """Insert rows, or update `update` fields where the `conflict` fields already exist."""
    if not rows:
        return
    fields, rows = _with_defaults(model, fields, rows)
    if not _pg():
        for start in range(0, len(rows), CHUNK):
            model.objects.bulk_create(
                [_instance(model, r) for r in rows[start : start + CHUNK]],
                update_conflicts=True,
                unique_fields=list(conflict),
                update_fields=list(update),
            )
        return
    stage = _stage(model, fields, rows)
    columns = ", ".join(f'"{_column(model, f)}"' for f in fields)
    keys = ", ".join(f'"{_column(model, f)}"' for f in conflict)
    sets = ", ".join(f'"{_column(model, f)}" = EXCLUDED."{_column(model, f)}"' for f in update)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{model._meta.db_table}" ({columns}) SELECT {columns} FROM "{stage}" ON CONFLICT ({keys}) DO UPDATE SET {sets}'
        )
        cursor.execute(f'DROP TABLE "{stage}"')


def update(model: type[models.Model], key: str, fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Set `fields` on the rows identified by `key` (each row holds key and fields)."""
    if not rows:
        return
    if not _pg():
        objects = [_instance(model, r) for r in rows]
        model.objects.bulk_update(objects, list(fields), batch_size=CHUNK)
        return
    stage = _stage(model, [key, *fields], rows)
    sets = ", ".join(f'"{_column(model, f)}" = s."{_column(model, f)}"' for f in fields)
    column = _column(model, key)
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{model._meta.db_table}" AS t SET {sets} FROM "{stage}" AS s WHERE t."{column}" = s."{column}"')
        cursor.execute(f'DROP TABLE "{stage}"')
