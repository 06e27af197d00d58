"""Publishing changes to the feed: in the transaction that makes them final, as its last
statement, under one lock, so that the feed's sequence order is the order of visibility.

Why not page ChangeEvent by id: ids are taken when a row is inserted, and transactions commit in
another order (two scopes' evaluations run side by side), so a reader that saw id 120 may later
find 117 committed behind it; and a scan rewrites its own events while it runs (a status moved
twice in one scan is one event, retargeted or dropped: posture/store/results.py store_changed).

So the feed copies each change into FeedEntry when the change is final, and publication holds a
transaction-level advisory lock from just before its INSERT until its commit. A publisher's
numbers are drawn under the lock, and the lock is released only after the commit is visible;
the next publisher draws larger numbers. Hence no entry with a smaller seq can appear after a
reader has seen a larger one, and `seq > cursor` never skips anything. On SQLite (the embedded
default) writes are serialised by the database itself, so no lock is taken.

When a change is final, per path that writes ChangeEvents:
- A re-evaluation without a scan (governance changes, lapses, catalog changes, `evaluate`):
  each chunk's transaction stores its events and is final at commit (nothing rewrites a
  scan-less event), so `publish_moves` runs at the end of that transaction. A run that dies
  half-way leaves its committed chunks published and the rest unwritten: nothing is half-seen.
- A scan: its batches are evaluated early, chunk by chunk, and the final pass may rewrite those
  events, so they are final only when the scan closes (as alerts are planned then:
  posture/alerts/planning.py). `publish_scan` copies the scan's events in the transaction that
  closes the scan (posture/scans/finish.py, posture/scans/start.py); the conditional UPDATE of
  the scan's state there makes it run once per scan. A chunk stored under the scan while it was
  open publishes nothing.
- A chunk stored under a scan already closed (a batch's early evaluation that took the scope's
  lock just after the final pass, for its one chunk before it notices): `publish_moves` finds
  the scan closed and publishes what that chunk moved, so nothing is lost and nothing the scan
  published is rewritten. The scan's state is read after taking the lock: a close that
  committed first is seen, and a close that comes later waits for this chunk's commit and then
  copies its events itself.

A publishing transaction commits synchronously (`_durable`), even where the evaluation's writes
do not wait for the disk: an entry once read must survive a server crash.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection

from posture.models import ChangeEvent, Cluster, FeedEntry, Scan, Scope
from posture.store import bulk

# The publication lock's key in PostgreSQL's one-bigint advisory lock space ("ARCFEED"), apart
# from the scopes' evaluation locks, which use the two-integer space.
PUBLISH_LOCK = 0x41524346454544

ENTRY_COLUMNS = (
    "at",
    "cluster_id",
    "cluster_name",
    "resource_id",
    "scope_id",
    "scope_name",
    "control",
    "from_status",
    "to_status",
    "scan_id",
)


def _lock() -> None:
    """Take the publication lock until this transaction ends."""
    if connection.vendor == "postgresql":
        if not connection.in_atomic_block:  # the lock would end with this statement
            raise RuntimeError("publish inside the transaction that stores the changes")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PUBLISH_LOCK])


def _durable() -> None:
    """Commit this transaction synchronously, though the evaluation's writes relax it
    (posture/store/bulk.py relax_durability). An entry is visible before an asynchronous commit
    reaches the disk: a server crash could then lose entries a client has read, and the numbers
    drawn for them (the sequence's advance is lost with them), so new entries would be numbered
    again below that client's cursor and never reach it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO ON")


def publish_moves(moves: list[dict[str, Any]], scan: Scan | None, now: dt.datetime) -> None:
    """Publish the status changes one stored chunk made (`cluster_id`, `control`, `from_status`,
    `to_status` each), unless they belong to a scan still open, whose close publishes them.
    Call it last in the chunk's transaction. A few statements whatever the number of changes."""
    if not moves:
        return
    if scan is None:
        # Rows are built before the lock, which only orders publications: others wait for the
        # INSERT and the commit alone.
        rows = _rows(moves, None, now)
        _lock()
    else:
        _lock()
        if not Scan.objects.filter(pk=scan.pk, state__in=Scan.FINISHED_STATES).exists():
            return
        rows = _rows(moves, scan, now)  # rare: a chunk stored after its scan closed
    _durable()
    bulk.insert(FeedEntry, ENTRY_COLUMNS, rows)


def _rows(moves: list[dict[str, Any]], scan: Scan | None, now: dt.datetime) -> list[dict[str, Any]]:
    clusters = {
        pk: (name, arm_id, scope_id, scope_name or "")
        for pk, name, arm_id, scope_id, scope_name in Cluster.objects.filter(pk__in={m["cluster_id"] for m in moves})
        .order_by()
        .values_list("pk", "name", "arm_id", "scope_id", "scope__name")
    }
    scan_id = scan.pk if scan is not None else None
    rows = []
    for move in moves:
        name, arm_id, scope_id, scope_name = clusters[move["cluster_id"]]
        rows.append(
            {
                "at": now,
                "cluster_id": move["cluster_id"],
                "cluster_name": name,
                "resource_id": arm_id,
                "scope_id": scope_id,
                "scope_name": scope_name,
                "control": move["control"],
                "from_status": move["from_status"],
                "to_status": move["to_status"],
                "scan_id": scan_id,
            }
        )
    return rows


def publish_scan(scan: Scan) -> int:
    """Publish every change event of `scan`, in the transaction that closes it, as its last
    statement: one INSERT … SELECT however many there are. Returns how many."""
    _lock()
    _durable()
    entry = FeedEntry._meta
    columns = ", ".join(f'"{entry.get_field(name).column}"' for name in ENTRY_COLUMNS)
    event, cluster, scope = ChangeEvent._meta.db_table, Cluster._meta.db_table, Scope._meta.db_table
    scan_id = Scan._meta.pk.get_db_prep_value(scan.pk, connection)
    with connection.cursor() as cursor:
        # INSERT … SELECT, which the ORM lacks: names come from the models, values are parameters.
        # The scan's scope, not the cluster's current one: what the scan saw. Ordered so that a
        # client reads a scan's changes in the order they were found.
        cursor.execute(
            f'INSERT INTO "{entry.db_table}" ({columns}) '  # noqa: S608
            f"SELECT e.at, e.cluster_id, c.name, c.arm_id, s.id, s.name, e.control, e.from_status, e.to_status, e.scan_id "
            f'FROM "{event}" e JOIN "{cluster}" c ON c.id = e.cluster_id JOIN "{scope}" s ON s.id = %s '
            f"WHERE e.scan_id = %s ORDER BY e.at, e.id",
            [scan.scope_id, scan_id],
        )
        return cursor.rowcount
