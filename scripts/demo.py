"""`make demo`: the embedded default end to end, on the built-in demo fleet.

Starts the Azure emulator (a few hundred generated clusters), migrates the SQLite database,
points a scope at the emulator, runs a scan through the real Azure SDKs, then serves the
dashboard on http://127.0.0.1:8000 and prints a login. Ctrl-C or SIGTERM stops everything it
started within a few seconds, at any step.

Alerts: after the first scan it creates a sample rule (controls of medium severity or more that
regress, mailed to DEMO_ALERT_TO), makes the emulator's fleet worse (azure_emulator/fleet/worsen.py:
a few clusters lose their private path to Azure) and scans again. The alert goes to the SMTP
server named by EMAIL_HOST (a local catcher such as mailpit), or to the log when EMAIL_HOST is
not set; the output says which, and shows the logged alert.

This script is a development tool: production code never imports the emulator.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
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
ALERT_TO = os.environ.get("DEMO_ALERT_TO", "secops@example.test")
WORSENED = 3  # clusters that lose their private path before the second scan
# A log record of the plain format (web/settings/base.py): time, level, logger, message.
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ \S+ ")
# How long a started process may take to stop on SIGTERM before its process group is killed.
STOP_GRACE_SECONDS = 4.0


def embedded_env(**extra: str) -> dict[str, str]:
    """The embedded default: no database or broker URL, so SQLite under var/ and in-process tasks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "REDIS_", "AZURE_", "DJANGO_"))}
    # Links in alerts lead to this demo's server, unless the user chose another public address.
    env.setdefault("SITE_URL", f"http://{ADDRESS}")
    env.update(DJANGO_SETTINGS_MODULE="web.settings.base", PYTHONUNBUFFERED="1", LOG_FORMAT="plain", **extra)
    return env


def run(env: dict[str, str], *args: str, script: str = "manage.py") -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{script} {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def scan(env: dict[str, str]) -> str:
    """Scan the demo scope to its end; its output (stdout, then the log)."""
    result = run(env, "scan", "--scope", "demo", "--wait")
    print(result.stdout.strip().splitlines()[-1], flush=True)
    return result.stdout + result.stderr


def worsen_fleet(info: dict[str, str]) -> int:
    """Ask the emulator for its documented "worse" change; how many clusters it changed."""
    request = urllib.request.Request(  # noqa: S310 - the emulator's control API, on loopback
        info["base_url"] + "/_emu/fleet/worsen",
        data=json.dumps({"clusters": WORSENED}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30, context=ssl.create_default_context(cafile=info["ca_file"])) as answer:  # noqa: S310
        return len(json.load(answer)["clusters"])


def logged_alerts(output: str) -> list[str]:
    """The log records of alerts written to the log (posture/alerts/delivery.py, no EMAIL_HOST)."""
    records, current = [], None
    for line in output.splitlines():
        if LOG_RECORD.match(line):
            current = [line] if "alert (no EMAIL_HOST set)" in line else None
            if current is not None:
                records.append(current)
        elif current is not None:
            current.append(line)
    return ["\n".join(record).rstrip() for record in records]


def alerts_step(env: dict[str, str], info: dict[str, str]) -> None:
    """The sample rule, a fleet that got worse, the second scan, and where its alert went."""
    print(run(env, "rule", ALERT_TO, script="scripts/demo_alerts.py").stdout.strip(), flush=True)
    changed = worsen_fleet(info)
    print(f"The fleet got worse: {changed} clusters lost their private path to Azure. Scanning again …", flush=True)
    output = scan(env)
    print(run(env, "report", script="scripts/demo_alerts.py").stdout.rstrip(), flush=True)
    for record in logged_alerts(output):
        print("\n" + record, flush=True)


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
        scan(env)
        password = run(env, "user", "demo", "--role", "admin", "--random-password").stdout.strip().splitlines()[-1].split(": ", 1)[1]
        alerts_step(env, info)
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
