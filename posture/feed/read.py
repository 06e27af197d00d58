"""Reading the change feed: pages of entries after a cursor (GET /api/v1/changes?after=…).

A cursor is the seq of the last entry a client read, signed (django.core.signing, its own salt)
so that a client can neither forge one nor mistake it for a number to do arithmetic on. Entries
are appended in the order they become visible (posture/feed/publish.py), so "seq > cursor" is
every change not yet read, once: a client that stores each page's `next_cursor` and asks again
sees every change exactly once, however many scans land meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import Max

from posture.feed.prune import pruned_through, retention_days
from posture.models import FeedEntry
from posture.timestamps import iso_utc

SALT = "posture.feed.cursor"
# The most entries one page may ask for; the API refuses more (a 400, not a silent clamp).
MAX_LIMIT = 1000
# A real cursor is some 40 characters; anything far longer is refused before it is decoded.
MAX_CURSOR_LENGTH = 200

FIELDS = (
    "seq",
    "at",
    "cluster_id",
    "cluster_name",
    "resource_id",
    "scope_name",
    "control",
    "from_status",
    "to_status",
    "scan_id",
)


@dataclass(frozen=True)
class FeedPage:
    # Oldest first; each JSON-ready: "cursor" (str), "at" (ISO 8601 UTC), "cluster_id",
    # "cluster_name", "resource_id" (the Azure id), "scope" (scope name), "control",
    # "from_status", "to_status", "scan_id" (str or None).
    entries: list[dict[str, Any]]
    next_cursor: str  # pass as `after` to get what follows; equals the given cursor when nothing new
    has_more: bool


class BadCursor(ValueError):
    """A cursor this feed did not issue (malformed or tampered with)."""


class CursorExpired(Exception):
    """Entries after the cursor were pruned: the client missed changes and must start over."""


def encode_cursor(seq: int) -> str:
    # Signer (no timestamp): the same position always gives the same cursor.
    return signing.Signer(salt=SALT).sign_object({"s": seq})


def decode_cursor(cursor: str) -> int:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise BadCursor("the cursor is not one this feed issued")
    try:
        value = signing.Signer(salt=SALT).unsign_object(cursor)
    except (signing.BadSignature, ValueError) as exc:
        raise BadCursor("the cursor is not one this feed issued") from exc
    seq = value.get("s") if isinstance(value, dict) else None
    if type(seq) is not int or seq < 0:  # noqa: E721 - a bool is an int, and no cursor
        raise BadCursor("the cursor is not one this feed issued")
    return seq


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "cursor": encode_cursor(row["seq"]),
        "at": iso_utc(row["at"]),
        "cluster_id": row["cluster_id"],
        "cluster_name": row["cluster_name"],
        "resource_id": row["resource_id"],
        "scope": row["scope_name"],
        "control": row["control"],
        "from_status": row["from_status"],
        "to_status": row["to_status"],
        "scan_id": None if row["scan_id"] is None else str(row["scan_id"]),
    }


def changes_after(cursor: str | None, limit: int) -> FeedPage:
    """Up to `limit` entries after `cursor` (None: from the oldest entry kept), oldest first.
    BadCursor for a cursor this feed did not issue; CursorExpired when entries after it were
    pruned. Three queries at most."""
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:  # noqa: E721
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    after = pruned_through() if cursor is None else decode_cursor(cursor)
    rows = list(FeedEntry.objects.filter(seq__gt=after).order_by("seq").values(*FIELDS)[: limit + 1])
    if cursor is not None and after < pruned_through():
        # Read after the rows: a prune that ran before or during their query is seen here, so a
        # page with a hole is never served (a prune just after it costs the client a restart).
        raise CursorExpired(f"changes after this cursor were pruned (the feed keeps {retention_days()} days): start again without a cursor")
    entries = [_entry(row) for row in rows[:limit]]
    if entries:
        return FeedPage(entries=entries, next_cursor=entries[-1]["cursor"], has_more=len(rows) > limit)
    if after > (FeedEntry.objects.aggregate(last=Max("seq"))["last"] or 0) and after > pruned_through():
        # Signed by this installation, yet past its last entry: the database was restored from an
        # older backup, and waiting here would skip the entries numbered again below the cursor.
        raise BadCursor("the cursor is ahead of this feed (was the database restored?): start again without a cursor")
    return FeedPage(entries=[], next_cursor=cursor if cursor is not None else encode_cursor(after), has_more=False)
