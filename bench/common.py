"""Shared plumbing for the benchmarks: a fresh PostgreSQL database, the emulator as a process,
Celery workers as processes, and RSS sampling. Benchmarks print figures; they assert nothing."""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/arcposture_bench"
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"


def reset_database(url: str) -> None:
    """Drop and recreate the benchmark database (never the application's own)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.endswith("_bench"):
        raise SystemExit(f"refusing to reset {name!r}: benchmark databases end in _bench")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def app_env(database: str, broker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "REDIS_", "AZURE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="web.settings.base",
        DATABASE_URL=database,
        CELERY_BROKER_URL=broker,
        ARC_VAR_DIR=str(ROOT / "var" / "bench"),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def emulator_env(info: dict[str, Any]) -> dict[str, str]:
    """The emulator `info` describes, defined as the operator's cloud "emulator" (ARC_CLOUDS)."""
    from azure_emulator import cloud_env

    return {"ARC_CLOUDS": "emulator", **cloud_env(info, "emulator")}


def add_scope(env: dict[str, str], info: dict[str, Any], name: str = "bench") -> None:
    """Define the emulator `info` describes as the operator's cloud in `env` (the workers started
    with `env` see it), migrate, then add a scope that scans it, as a user would."""
    env.update(emulator_env(info))
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, *("scope", "add", name, "--tenant-id", info["tenant_id"], "--cloud", "emulator"))


class Emulator:
    """`python -m azure_emulator serve` in a process of its own, as a real service would be."""

    def __init__(self, clusters: int, seed: int, quota: str, workdir: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "azure_emulator",
                "serve",
                "--clusters",
                str(clusters),
                "--seed",
                str(seed),
                "--quota",
                quota,
                "--workdir",
                str(workdir),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise SystemExit("the emulator did not start")
        self.info: dict[str, Any] = json.loads(line)

    def stats(self) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=self.info["ca_file"])
        with urllib.request.urlopen(self.info["base_url"] + "/_emu/stats", context=context, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


class Worker:
    def __init__(self, env: dict[str, str], concurrency: int, log: Path, queues: str = "default,collect", nice: int = 0) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [
                *(["nice", "-n", str(nice)] if nice else []),
                sys.executable,
                "-m",
                "celery",
                "-A",
                "web",
                "worker",
                "-Q",
                queues,
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",  # task start and run times, to read where a benchmark's time went
                "-n",
                f"{queues}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.peak_process_mb = 0.0
        self.peak_tree_mb = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        time.sleep(3)

    def _sample(self) -> None:
        while not self._stop.is_set():
            sizes = [rss_mb(pid) for pid in process_tree(self.process.pid)]
            if sizes:
                self.peak_process_mb = max(self.peak_process_mb, max(sizes))
                self.peak_tree_mb = max(self.peak_tree_mb, sum(sizes))
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far, with their exited children's (reaped
    ones are added to the parent's cutime/cstime: PostgreSQL's ended backends, for example)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / ticks
        except (OSError, ValueError, IndexError):
            continue
    return total


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def scan_in_process(clusters: int, seed: int, database: str, work: Path) -> dict[str, str]:
    """Collect and evaluate the emulator fleet into `database` with no broker: the scan runs in
    this process's child, start to finish (a benchmark's untimed setup). Returns the app's env."""
    reset_database(database)
    emulator = Emulator(clusters, seed, "off", work / "emulator")
    info = emulator.info
    env = app_env(database, "", AZURE_CLIENT_ID=info["client_id"], AZURE_CLIENT_SECRET=info["client_secret"])
    env.pop("CELERY_BROKER_URL")
    try:
        add_scope(env, info)
        began = time.monotonic()
        manage(env, "scan", "--scope", "bench", "--wait")
    finally:
        emulator.stop()
    print(f"collected and evaluated {clusters:,} clusters in {time.monotonic() - began:.0f} s (setup)", flush=True)
    return env


def scanned_bench(description: str | None, prefix: str) -> tuple[argparse.Namespace, Path]:
    """The shared start of bench/evaluate.py and bench/export.py: their options, the fleet
    collected and evaluated in-process (untimed), and Django set up on that database."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clusters", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=prefix))
    args.env = scan_in_process(args.clusters, args.seed, args.database, work)
    os.environ.update(args.env)
    import django

    django.setup()
    return args, work
