"""The text of an export's cells: canonical evidence JSON, tags, benchmark references and times,
the same in every format."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson

from posture.catalog.frameworks import Ref

SHORT_NAMES = {"cis-k8s": "CIS", "nist-800-190": "NIST", "nsa-cisa": "NSA/CISA", "owasp-k8s": "OWASP", "msft-arc-network": "Microsoft"}


def canonical_json(text: str | None) -> str:
    """JSON text as sorted-key compact JSON. orjson writes it in a third of json's time (this was
    the largest cost of a findings export); json.loads reads it because orjson's would turn an
    integer past 64 bits into a float, and json writes what orjson refuses (those integers)."""
    value = json.loads(text) if text is not None else None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_tags(tags: dict[str, Any] | None) -> str:
    """`k=v; k=v`, keys sorted: PostgreSQL's jsonb and SQLite keep keys in different orders."""
    return "; ".join(f"{key}={value}" for key, value in sorted((tags or {}).items()))


def format_refs(refs: tuple[Ref, ...]) -> str:
    """`CIS 5.3.2; NIST 4.4.2`: each framework's short name and the section id."""
    return "; ".join(f"{SHORT_NAMES.get(ref.framework, ref.framework)} {ref.section}" for ref in refs)


def timestamp(text: str) -> dt.datetime:
    """A timestamp as the database writes it as text: PostgreSQL with its offset, SQLite in UTC
    without one."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def text(value: Any) -> str:
    return "" if value is None else str(value)
