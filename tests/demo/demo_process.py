"""`scripts/demo.py` run as a user runs it, in a session of its own, for the demo tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# STOP_GRACE_SECONDS in scripts/demo.py, plus the time a loaded machine takes to reap.
STOP_DEADLINE_SECONDS = 15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_of(var_dir: Path) -> list[int]:
    """Every live process started by this demo: they all inherit ARC_VAR_DIR."""
    marker = f"ARC_VAR_DIR={var_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and (entry / "stat").read_text().split()[2] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class Demo:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.var = tmp_path / "var"
        self.address = f"127.0.0.1:{free_port()}"
        self.log = tmp_path / "demo.log"
        env = {**os.environ, "ARC_VAR_DIR": str(self.var), "DEMO_ADDRESS": self.address, "DEMO_CLUSTERS": "30", **env}
        # A session of its own, as a terminal gives a foreground job: Ctrl-C is SIGINT to the group.
        self.process = subprocess.Popen(
            [sys.executable, "scripts/demo.py"],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, f"the demo ended early:\n{self.output()}"
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.output()}"
            time.sleep(0.1)

    def stop(self, signum: int, *, group: bool) -> float:
        started = time.monotonic()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        return time.monotonic() - started

    def cleanup(self) -> None:
        for pid in processes_of(self.var):
            os.kill(pid, signal.SIGKILL)
