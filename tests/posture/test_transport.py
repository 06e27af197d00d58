"""The Resource Graph transport hands over an answer's headers before its body has arrived."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest
from azure.core.rest import HttpRequest

from posture.collect.transport import HeadersFirstTransport

BODY_DELAY_S = 0.6


class SlowBodyHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-user-quota-remaining", "7")
        self.end_headers()
        self.wfile.flush()
        time.sleep(BODY_DELAY_S)  # a large page still on its way
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def slow_body_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowBodyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page"
    server.shutdown()


def test_the_quota_headers_are_handed_over_before_the_body_is_read(slow_body_server) -> None:
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    with HeadersFirstTransport() as transport:
        response = transport.send(
            HttpRequest("GET", slow_body_server),
            stream=False,
            on_headers=lambda r: seen.append((time.monotonic() - started, r.headers["x-ms-user-quota-remaining"])),
        )
    finished = time.monotonic() - started
    assert [remaining for _, remaining in seen] == ["7"]
    assert seen[0][0] < BODY_DELAY_S <= finished
    assert response.status_code == 200 and response.json() == {"data": []}  # read whole, as if unstreamed
