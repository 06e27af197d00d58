"""`make demo` stops everything it started, within a few seconds, whatever step it is at."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.demo.demo_process import Demo, processes_of

pytestmark = pytest.mark.slow


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
