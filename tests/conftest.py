"""Shared fixtures: users in each role, and access to the real services.

PostgreSQL and Redis come from DATABASE_URL and CELERY_BROKER_URL (.ci/run exports them).
Without them, tests that need them are skipped, unless ARC_REQUIRE_SERVICES=1 (set by
.ci/run) turns "service unavailable" into a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from posture.roles import ADMIN, ANALYST, VIEWER, assign_role

PASSWORD = "correct horse battery staple"
REQUIRE_SERVICES = os.environ.get("ARC_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(f"service unavailable: {reason} (set ARC_REQUIRE_SERVICES=1 to fail instead)")


def broker_url() -> str:
    return settings.CELERY_BROKER_URL or "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    url = broker_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        unavailable(f"Redis at {url}: {exc}")
    return url


@pytest.fixture
def postgres(transactional_db: Any) -> None:
    if connection.vendor != "postgresql":
        unavailable(f"PostgreSQL (DATABASE_URL points at {connection.vendor})")


@pytest.fixture(autouse=True)
def _fresh_snapshot_memo() -> Iterator[None]:
    """Each test starts without another test's FleetSnapshots kept in memory (a row id that a
    rollback freed comes back with other numbers, and tests often fix the time)."""
    from posture.read.fleet import forget_snapshots

    forget_snapshots()
    yield


def make_user(username: str, role: str | None) -> Any:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role:
        assign_role(user, role)
    return user


@pytest.fixture
def viewer(db: Any) -> Any:
    return make_user("vera-viewer", VIEWER)


@pytest.fixture
def analyst(db: Any) -> Any:
    return make_user("anna-analyst", ANALYST)


@pytest.fixture
def admin_user(db: Any) -> Any:
    return make_user("adam-admin", ADMIN)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(viewer: Any) -> Client:
    return logged_in(viewer)


@pytest.fixture
def analyst_client(analyst: Any) -> Client:
    return logged_in(analyst)


@pytest.fixture
def admin_client(admin_user: Any) -> Client:
    return logged_in(admin_user)


@pytest.fixture
def celery_live(settings: Any) -> Iterator[None]:
    """Publish tasks to the real broker instead of running them in-process."""
    from web.celery import app

    # Celery 5.6 resolves the namespaced key (CELERY_TASK_ALWAYS_EAGER) before the plain one.
    previous = app.conf.task_always_eager
    app.conf["CELERY_TASK_ALWAYS_EAGER"] = app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf["CELERY_TASK_ALWAYS_EAGER"] = app.conf.task_always_eager = previous


class WorkerProcess:
    """A real `celery worker` process started by a test, on the test database."""

    def __init__(self, process: Any, log_path: Any) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: no warm shutdown, no chance to ack anything."""
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except Exception:  # noqa: BLE001 - escalate to a kill
                self.kill()


def database_url_for_subprocess() -> str:
    from urllib.parse import quote

    s = connection.settings_dict
    if connection.vendor != "postgresql":
        unavailable("a worker process needs PostgreSQL (SQLite test databases live in memory)")
    auth = quote(s["USER"] or "") + (":" + quote(s["PASSWORD"]) if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def start_worker(postgres: None, redis_url: str, tmp_path: Any) -> Iterator[Any]:
    """Factory: start_worker(queues=("default", "collect"), extra_env={...}, gossip=False) -> WorkerProcess."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    client = redis.Redis.from_url(redis_url)
    for pattern in ("default*", "collect*", "unacked*", "_kombu*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    workers: list[WorkerProcess] = []
    root = Path(__file__).resolve().parents[1]

    def start(
        queues: tuple[str, ...] = ("default", "collect"),
        extra_env: dict[str, str] | None = None,
        concurrency: int = 1,
        name: str = "testworker",
        gossip: bool = False,
    ) -> WorkerProcess:
        log_path = tmp_path / f"{name}-{len(workers)}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "web.settings.base",
            "DATABASE_URL": database_url_for_subprocess(),
            "CELERY_BROKER_URL": redis_url,
            "ARC_VAR_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "web",
                "worker",
                "-Q",
                ",".join(queues),
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "-n",
                f"{name}{len(workers)}@%h",
                # Production workers gossip and mingle (docker-compose.yml); most tests need not.
                *(() if gossip else ("--without-gossip", "--without-mingle")),
                "-l",
                "info",
            ],
            cwd=root,
            env=env,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = WorkerProcess(process, log_path)
        workers.append(worker)
        deadline = time.monotonic() + 60
        while "ready." not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker did not start:\n{worker.log()}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def make_emulator(tmp_path: Any) -> Iterator[Any]:
    """Factory for HTTPS emulators of Entra ID, Resource Graph and ARM (stopped after the test)."""
    from azure_emulator import Emulator

    started: list[Any] = []

    def make(clusters: int = 60, seed: int = 7, **options: Any) -> Any:
        options.setdefault("quota", None)
        options.setdefault("workdir", tmp_path / f"emulator-{len(started)}")
        emulator = Emulator(clusters=clusters, seed=seed, **options)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator_cloud(monkeypatch: Any, settings: Any) -> Any:
    """Factory: defines an emulator as an operator's custom cloud (ARC_CLOUDS, in the environment as in
    production, so worker processes see it too) and returns the cloud's name."""
    from azure_emulator import cloud_env
    from posture.collect.credentials import clear_cache
    from web.azure_config import load_clouds

    names: dict[int, str] = {}
    clear_cache()

    def define(emulator: Any) -> str:
        if id(emulator) not in names:
            names[id(emulator)] = "emulator" if not names else f"emulator-{len(names) + 1}"
            monkeypatch.setenv("ARC_CLOUDS", ",".join(names.values()))
            for key, value in cloud_env(emulator.summary(), names[id(emulator)]).items():
                monkeypatch.setenv(key, value)
            settings.ARC_CLOUDS = load_clouds()
        return names[id(emulator)]

    yield define
    clear_cache()


@pytest.fixture
def emulator_scope(monkeypatch: Any, emulator_cloud: Any) -> Any:
    """Factory: a scope on an emulator the operator defined as a cloud; its credentials go to the
    environment, as in production."""
    from posture.scopes import scope_create

    def make(emulator: Any, name: str = "emulated", **fields: Any) -> Any:
        monkeypatch.setenv("AZURE_CLIENT_ID", emulator.client_id)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", emulator.client_secret)
        return scope_create(name=name, tenant_id=emulator.tenant_id, cloud=emulator_cloud(emulator), **fields)

    return make
