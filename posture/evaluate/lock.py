"""One evaluation per scope at a time, across processes, whose holder's death frees it.

On PostgreSQL the lock is a session-level advisory lock held on a connection of its own: it
dies with its session, so a SIGKILLed worker or a restarted server frees it at once (and a
vanished host within about a minute, by TCP keepalives), and it needs no expiry. Elsewhere
(SQLite, the embedded default: one process) it is a lease on the Scope row, renewed between
chunks and free once older than ARC_EVALUATION_LEASE_SECONDS. Either way only its owner
releases it: the lease is cleared by compare-and-clear on the stamp the owner wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from posture.models import Scope

# The advisory-lock namespace of scope evaluations ("ARCE"); the scope's id is the second key.
ADVISORY_CLASS = 0x41524345
# How often a waiting evaluation looks again.
POLL_SECONDS = 0.5


class ScopeBusy(Exception):
    """Another live process is evaluating this scope."""


class LockLost(Exception):
    """The lock's session or lease is gone: another evaluation may already hold the scope."""


class AdvisoryLock:
    def __init__(self, scope_id: int) -> None:
        self.scope_id = scope_id
        self.db: Any = None

    def acquire(self) -> bool:
        if self.db is None:
            self.db = connection.copy()
            with self.db.cursor() as cursor:
                # The server notices a client host that vanished without closing its socket.
                cursor.execute("SET tcp_keepalives_idle = 15; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 4")
        with self.db.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_CLASS, self.scope_id])
            return bool(cursor.fetchone()[0])

    def renew(self) -> None:
        try:
            with self.db.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s"
                    " AND pid = pg_backend_pid() AND granted",
                    [ADVISORY_CLASS, self.scope_id],
                )
                held = cursor.fetchone() is not None
        except DatabaseError as exc:
            raise LockLost(f"the evaluation lock of scope {self.scope_id} went with its session: {exc}") from exc
        if not held:
            raise LockLost(f"scope {self.scope_id} is no longer locked by this evaluation")

    def release(self) -> None:
        if self.db is None:
            return
        try:
            with suppress(DatabaseError), self.db.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_CLASS, self.scope_id])
        finally:
            with suppress(DatabaseError):
                self.db.close()  # ends the session: nothing of the lock outlives it
            self.db = None


class LeaseLock:
    def __init__(self, scope_id: int) -> None:
        self.scope_id = scope_id
        self.stamp: Any = None

    def acquire(self) -> bool:
        now = timezone.now()
        expired = now - timedelta(seconds=settings.ARC_EVALUATION_LEASE_SECONDS)
        free = Q(evaluation_claimed_at__isnull=True) | Q(evaluation_claimed_at__lt=expired)
        if Scope.objects.filter(pk=self.scope_id).filter(free).update(evaluation_claimed_at=now):
            self.stamp = now
            return True
        return False

    def renew(self) -> None:
        now = timezone.now()
        if not Scope.objects.filter(pk=self.scope_id, evaluation_claimed_at=self.stamp).update(evaluation_claimed_at=now):
            raise LockLost(f"the evaluation lease of scope {self.scope_id} expired and was taken")
        self.stamp = now

    def release(self) -> None:
        if self.stamp is not None:
            Scope.objects.filter(pk=self.scope_id, evaluation_claimed_at=self.stamp).update(evaluation_claimed_at=None)
            self.stamp = None


EvaluationLock = AdvisoryLock | LeaseLock


def new_lock(scope_id: int) -> EvaluationLock:
    return AdvisoryLock(scope_id) if connection.vendor == "postgresql" else LeaseLock(scope_id)


@contextmanager
def evaluation_lock(scope_id: int, wait_seconds: float = 0.0, waiting: Callable[[], None] = lambda: None) -> Iterator[EvaluationLock]:
    """Hold the scope's evaluation lock, waiting up to `wait_seconds` for it (ScopeBusy after).
    `waiting` is called between looks and may raise to stop waiting."""
    lock = new_lock(scope_id)
    deadline = time.monotonic() + wait_seconds
    try:
        while not lock.acquire():
            if time.monotonic() >= deadline:
                raise ScopeBusy(f"scope {scope_id} is being evaluated by another process")
            waiting()
            time.sleep(POLL_SECONDS)
        yield lock
    finally:
        lock.release()
