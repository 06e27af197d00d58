"""HTTPS plumbing: a threading HTTP/1.1 server that does the TLS handshake per connection in the
worker thread (tooling.md §4.1), so a client that never completes it cannot block accept()."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from azure_emulator.app import App
from azure_emulator.certs import CertificateFiles
from azure_emulator.messages import Request, Response

HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 120.0  # keep-alive connections idle longer than this are closed


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, app: App, certificates: CertificateFiles) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.app = app
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_context.load_cert_chain(certificates.cert_file, certificates.key_file)
        self._thread: threading.Thread | None = None
        self._connections: set[ssl.SSLSocket] = set()
        self._connections_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="azure-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.app.stopping.set()
        self.shutdown()
        self.server_close()
        # Keep-alive connections would otherwise go on being served after stop().
        with self._connections_lock:
            live = list(self._connections)
        for connection in live:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT)
        # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive response.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self._connections_lock:
            self._connections.add(tls)
        try:
            tls.settimeout(IDLE_TIMEOUT)
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass  # the client went away mid-exchange (timeouts, dropped-connection faults)
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are routine here; nothing to report."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence per-request stderr logging; the app keeps its own log."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            raw_path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=str(self.client_address[0]),
        )
        response = self.server.app.handle(request)
        if response.drop:
            self._drop()
            return
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
