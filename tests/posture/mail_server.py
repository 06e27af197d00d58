"""A real SMTP server for the alert tests: aiosmtpd on loopback, started and stopped by a fixture.

It keeps every message it accepted (envelope and parsed message), refuses the recipients it is
told to with a 5xx, and can be taken down and brought back on the same port.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    def text(self) -> str:
        """The plain-text body, with the line ends SMTP gave it (CRLF) read back as newlines."""
        return self.message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]

    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


class Catcher:
    """The handler: accepts mail for anyone but the refused addresses."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: dict[str, str] = {}
        # Called from the server's thread: with the address before answering RCPT, with the
        # envelope before answering DATA.
        self.on_rcpt: Any = None
        self.on_data: Any = None
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if self.on_rcpt is not None:
            self.on_rcpt(address)
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.on_data is not None:
            self.on_data(envelope)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


class MailServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.catcher = Catcher()
        self.controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        with self.catcher.lock:
            return list(self.catcher.received)

    def refuse(self, address: str, reply: str = "550 5.1.1 <{address}>: Recipient address rejected: User unknown") -> None:
        self.catcher.refused[address] = reply.format(address=address)

    def start(self) -> None:
        self.controller = Controller(self.catcher, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mail_server(settings: Any) -> Iterator[MailServer]:
    """A running SMTP server on loopback, and the settings that send alerts to it."""
    server = MailServer()
    server.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "arc-posture@example.test"
    settings.SITE_URL = "https://arc.example.test/posture"
    yield server
    server.stop()
