"""`make demo`: the embedded default end to end, on the built-in demo fleet.

Starts the Azure emulator (a few hundred generated clusters), migrates the SQLite database,
points a scope at the emulator, runs a scan through the real Azure SDKs, then serves the
dashboard on http://127.0.0.1:8000 and prints a login. Ctrl-C or SIGTERM stops everything it
started within a few seconds, at any step.

This script is a development tool: production code never imports the emulator.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages are beside scripts/

from azure_emulator import cloud_env  # noqa: E402 - a development tool may use the emulator's helpers

VAR = Path(os.environ.get("ARC_VAR_DIR") or ROOT / "var")
ADDRESS = os.environ.get("DEMO_ADDRESS", "127.0.0.1:8000")
CLUSTERS = os.environ.get("DEMO_CLUSTERS", "300")
SEED = "2026"  # the same demo fleet every time (tests/demo/test_demo_fleet.py looks at it)
# How long a started process may take to stop on SIGTERM before its process group is killed.
STOP_GRACE_SECONDS = 4.0


def embedded_env(**extra: str) -> dict[str, str]:
    """The embedded default: no database or broker URL, so SQLite under var/ and in-process tasks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "REDIS_", "AZURE_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="web.settings.base", PYTHONUNBUFFERED="1", **extra)
    return env


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def start_emulator(started: list[subprocess.Popen[Any]]) -> dict[str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "azure_emulator", "serve", "--clusters", CLUSTERS, "--seed", SEED, "--workdir", str(VAR / "emulator")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started.append(process)  # before anything can interrupt: stop_all must find it
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        sys.exit("the Azure emulator did not start")
    return json.loads(line)


def wait_until_serving(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("the web server stopped while starting")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):  # noqa: S310 - our own loopback server
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"nothing answered on {url}")


def stop_all(processes: list[subprocess.Popen[Any]]) -> None:
    """SIGTERM every process group still running, wait a bounded time, then SIGKILL what is left.

    Signals are ignored meanwhile: a second Ctrl-C must not cut the cleanup short and leave the
    emulator or the server behind.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    running = [p for p in processes if p.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while any(p.poll() is None for p in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in running:
        if process.poll() is None:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM takes Ctrl-C's path; subprocess.run kills a running manage.py on the way out.
    raise KeyboardInterrupt


def ensure_free(address: str) -> None:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            sys.exit(f"{address} is already in use; stop what runs there or choose another address: make demo DEMO_ADDRESS=127.0.0.1:8001")


def main() -> None:
    # The emulator and the server run in sessions of their own, out of reach of the terminal's
    # Ctrl-C: whatever stops this script stops them in stop_all.
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C stops the demo even when it was started from a background job, whose shell ignores
    # SIGINT for its children (a non-interactive `make demo &`, or a CI run in the background).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ensure_free(ADDRESS)
    VAR.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen[Any]] = []
    try:
        print(f"Starting the Azure emulator with {CLUSTERS} demo clusters …", flush=True)
        info = start_emulator(started)
        emulator = {"ARC_CLOUDS": "emulator", "ARC_CLOUDS_FILE": "", **cloud_env(info, "emulator")}
        env = embedded_env(AZURE_CLIENT_ID=info["client_id"], AZURE_CLIENT_SECRET=info["client_secret"], **emulator)
        run(env, "migrate", "--noinput", "-v0")
        run(
            env,
            "shell",
            "--no-imports",
            "-c",
            (
                "from posture.models import Scope; from posture.scopes import scope_save;"
                "scope = Scope.objects.filter(name='demo').first() or Scope(name='demo');"
                f"scope.tenant_id={info['tenant_id']!r}; scope.cloud='emulator'; scope_save(scope)"
            ),
        )
        print("Scanning the demo fleet through the Azure SDKs …", flush=True)
        print(run(env, "scan", "--scope", "demo", "--wait").strip().splitlines()[-1], flush=True)
        password = run(env, "user", "demo", "--role", "admin", "--random-password").strip().splitlines()[-1].split(": ", 1)[1]
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "web.wsgi",
                "--bind",
                ADDRESS,
                "--workers",
                "2",
                "--threads",
                "4",
                "--timeout",
                "120",
                # A browser's open request must not hold up Ctrl-C.
                "--graceful-timeout",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        started.append(server)
        url = f"http://{ADDRESS}"
        wait_until_serving(url, server)
        print(f"\nArc Posture is running on {url}\n  user name: demo\n  password:  {password}\n\nPress Ctrl-C to stop.", flush=True)
        server.wait()
    except KeyboardInterrupt:
        print("\nStopping …", flush=True)
    finally:
        stop_all(started)


if __name__ == "__main__":
    main()
