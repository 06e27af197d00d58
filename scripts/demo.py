"""`make demo`: the embedded default end to end, on the built-in demo fleet.

Starts the Azure emulator (a few hundred generated clusters), migrates the SQLite database,
points a scope at the emulator, runs a scan through the real Azure SDKs, then serves the
dashboard on http://127.0.0.1:8000 and prints a login. Ctrl-C stops everything.

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

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
ADDRESS = os.environ.get("DEMO_ADDRESS", "127.0.0.1:8000")
CLUSTERS = os.environ.get("DEMO_CLUSTERS", "300")


def embedded_env(**extra: str) -> dict[str, str]:
    """The embedded default: no database or broker URL, so SQLite under var/ and in-process tasks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "REDIS_", "AZURE_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="web.settings.base", PYTHONUNBUFFERED="1", **extra)
    return env


def emulator_cloud(info: dict[str, str]) -> dict[str, str]:
    """The emulator, defined as the operator's custom cloud "emulator" (as azure_emulator.cloud_env does)."""
    return {
        "ARC_CLOUDS": "emulator",
        "ARC_CLOUDS_FILE": "",
        "ARC_CLOUD_EMULATOR_AUTHORITY": info["base_url"],
        "ARC_CLOUD_EMULATOR_ARM_ENDPOINT": info["base_url"],
        "ARC_CLOUD_EMULATOR_CA_FILE": info["ca_file"],
        "ARC_CLOUD_EMULATOR_AUDIENCE": "https://management.azure.com",  # the audience the emulator's ARM accepts
    }


def run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def start_emulator() -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "azure_emulator", "serve", "--clusters", CLUSTERS, "--seed", "2026", "--workdir", str(VAR / "emulator")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line:
        sys.exit("the Azure emulator did not start")
    return process, json.loads(line)


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


def ensure_free(address: str) -> None:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            sys.exit(f"{address} is already in use; stop what runs there or choose another address: make demo DEMO_ADDRESS=127.0.0.1:8001")


def main() -> None:
    # A `kill` stops the emulator and the server too, as Ctrl-C does (they run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ensure_free(ADDRESS)
    VAR.mkdir(exist_ok=True)
    print(f"Starting the Azure emulator with {CLUSTERS} demo clusters …", flush=True)
    emulator, info = start_emulator()
    env = embedded_env(AZURE_CLIENT_ID=info["client_id"], AZURE_CLIENT_SECRET=info["client_secret"], **emulator_cloud(info))
    server = None
    try:
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
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        url = f"http://{ADDRESS}"
        wait_until_serving(url, server)
        print(f"\nArc Posture is running on {url}\n  user name: demo\n  password:  {password}\n\nPress Ctrl-C to stop.", flush=True)
        server.wait()
    except KeyboardInterrupt:
        print("\nStopping …")
    finally:
        for process in (server, emulator):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
