"""Faults for the fault-matrix tests: a private Redis the test may restart, and a TCP proxy in
front of the shared PostgreSQL the test may cut. The shared services are never touched."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A throwaway redis-server on a free port, without persistence: a restart loses every key,
    as a crashed production Redis without AOF would."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
            cwd=self.workdir,
            stdout=(self.workdir / "redis.log").open("a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            if time.monotonic() > deadline:
                raise AssertionError("private redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_seconds: float = 2.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()


class CuttableProxy:
    """A TCP proxy between the workers and PostgreSQL. `cut()` closes every proxied connection
    and refuses new ones for a while: what clients see while a PostgreSQL server restarts."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing_until = 0.0
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.refusing_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self, refuse_seconds: float) -> None:
        self.refusing_until = time.monotonic() + refuse_seconds
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.stopped = True
        self.cut(0)
        self.listener.close()


@contextlib.contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """Point this process's Celery producer at `url` (the workers get it by their environment)."""
    from web.celery import app

    def reset() -> None:
        # Not closed: kombu keeps producer pools per broker URL for the whole process, and hands
        # the same one back once the URL is restored.
        app._pool = None
        app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    previous = os.environ.get("CELERY_BROKER_URL")
    reset()
    os.environ["CELERY_BROKER_URL"] = url
    try:
        yield
    finally:
        reset()
        if previous is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous


# How long a fault-matrix scan may take to end, fault and recovery included, before its test fails.
# A generous wait limit, not a timed assertion: with the defaults a dead worker is noticed within
# about a minute (ARC_WATCHDOG_STALE_SECONDS plus ARC_WATCHDOG_INTERVAL_SECONDS).
RECOVERY_BOUND = 240


def worker_env(emulator: Any, **extra: str) -> dict[str, str]:
    return {"AZURE_CLIENT_ID": emulator.client_id, "AZURE_CLIENT_SECRET": emulator.client_secret, **extra}


def wait_for(condition: Any, timeout: float, message: Any) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message()
        time.sleep(0.2)
