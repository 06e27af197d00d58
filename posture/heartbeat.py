"""Heartbeats written from a thread of their own, so that a long wait inside the work (a throttled
request, a quota wait, a large store) never makes a live worker look dead to the watchdog."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, connection, connections

log = logging.getLogger(__name__)


@contextmanager
def heartbeat_thread(beat: Callable[[], None], *, name: str) -> Iterator[None]:
    """Call `beat` from a thread of its own every ARC_PROGRESS_INTERVAL_SECONDS while the block
    runs: a heartbeat then means the process lives, however long a request, a quota wait or a
    store takes, and a dead worker is noticed after ARC_WATCHDOG_STALE_SECONDS. Only where a second
    connection sees the rows (PostgreSQL, outside a transaction); elsewhere work beats in line."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(settings.ARC_PROGRESS_INTERVAL_SECONDS):
                try:
                    beat()
                except DatabaseError as exc:  # the work itself meets the same outage and decides
                    log.warning("%s: heartbeat not written: %s", name, exc)
                    connections.close_all()
        finally:
            connections.close_all()  # this thread's connection

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
