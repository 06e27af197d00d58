"""`make demo` stops everything it started, within a few seconds, whatever step it is at."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# STOP_GRACE_SECONDS in scripts/demo.py, plus the time a loaded machine takes to reap.
STOP_DEADLINE_SECONDS = 15

pytestmark = pytest.mark.slow


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
    def __init__(self, tmp_path: Path) -> None:
        self.var = tmp_path / "var"
        self.address = f"127.0.0.1:{free_port()}"
        self.log = tmp_path / "demo.log"
        env = {**os.environ, "ARC_VAR_DIR": str(self.var), "DEMO_ADDRESS": self.address, "DEMO_CLUSTERS": "30"}
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


@pytest.fixture
def demo(tmp_path: Path):  # type: ignore[no-untyped-def]
    started = Demo(tmp_path)
    yield started
    started.cleanup()


def test_sigterm_during_the_scan_stops_the_scan_and_the_emulator(demo: Demo) -> None:
    demo.wait_for("Scanning the demo fleet")
    time.sleep(0.5)
    demo.stop(signal.SIGTERM, group=False)

    assert demo.process.poll() is not None, f"the demo did not stop:\n{demo.output()}"
    assert "Traceback" not in demo.output()
    assert processes_of(demo.var) == []


def test_ctrl_c_while_a_browser_holds_a_request_open_stops_everything(demo: Demo) -> None:
    demo.wait_for("Press Ctrl-C to stop.")
    host, port = demo.address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as browser:
        # A request whose headers never end keeps a server thread busy until its timeout.
        browser.sendall(b"GET /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.5)
        demo.stop(signal.SIGINT, group=True)

    assert demo.process.poll() == 0, f"the demo did not stop cleanly:\n{demo.output()}"
    assert "Traceback" not in demo.output()
    assert processes_of(demo.var) == []
    with socket.socket() as probe:
        # SO_REUSEADDR passes over TIME_WAIT, never over a socket still listening.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, int(port)))
        probe.listen()


def test_sigterm_while_serving_stops_the_server_and_the_emulator(demo: Demo) -> None:
    demo.wait_for("Press Ctrl-C to stop.")
    demo.stop(signal.SIGTERM, group=False)

    assert demo.process.poll() == 0, f"the demo did not stop cleanly:\n{demo.output()}"
    assert processes_of(demo.var) == []
