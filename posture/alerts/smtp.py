"""Django's SMTP backend with two hooks around the DATA command, and what an SMTP error means.

`before_data` runs after the server accepted the sender and the recipient and before DATA is
sent: the delivery records there that the server may take the message from now on (and stops if
its claim was lost). `after_data` runs as soon as the server answered 250 to the message, before
anything else can fail (QUIT, closing the socket), so a message taken is recorded as sent.

`send_reusing(message, hooks)` keeps one connection per worker thread open between messages
(connecting, EHLO, STARTTLS and AUTH cost more than the message itself on a busy relay).
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend

log = logging.getLogger(__name__)
# A connection idle this long is closed rather than reused: servers drop idle clients (RFC 5321
# asks them to wait at least 5 minutes; some wait far less), and a fresh one costs little then.
IDLE_SECONDS = 30.0


class ClaimLost(smtplib.SMTPException):
    """Another attempt owns the notification now: stop before DATA."""


@dataclass
class DataHooks:
    before_data: Callable[[], None]
    after_data: Callable[[str], None]
    # Set once before_data returned, just before DATA goes out: from then on the server may take
    # the message, so nothing about it may be tried again.
    data_began: bool = False


class _HookedData:
    hooks: DataHooks | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        if self.hooks is not None:
            self.hooks.before_data()
            self.hooks.data_began = True
        code, reply = super().data(msg)  # type: ignore[misc]
        if code == 250 and self.hooks is not None:
            self.hooks.after_data(reply_text(code, reply))
        return code, reply


class _SMTP(_HookedData, smtplib.SMTP):
    pass


class _SMTPSSL(_HookedData, smtplib.SMTP_SSL):
    pass


class HookedBackend(EmailBackend):
    """EmailBackend (settings EMAIL_HOST, EMAIL_PORT, TLS, timeout) whose connection calls `hooks`."""

    def __init__(self, hooks: DataHooks, **kwargs: Any) -> None:
        super().__init__(fail_silently=False, **kwargs)
        self.hooks = hooks

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _SMTPSSL if self.use_ssl else _SMTP

    def open(self) -> bool | None:
        opened = super().open()
        if self.connection is not None:
            self.connection.hooks = self.hooks
        return opened


class _Reused(threading.local):
    backend: HookedBackend | None = None
    settings: tuple[Any, ...] = ()
    last_used: float = 0.0


_reused = _Reused()


def _smtp_settings() -> tuple[Any, ...]:
    return (
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_HOST_PASSWORD,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
        settings.EMAIL_TIMEOUT,
    )


def send_reusing(message: EmailMessage, hooks: DataHooks) -> None:
    """Send `message` on this thread's open connection (opened when there is none, it is idle
    too long, or the settings changed), calling `hooks` around its DATA. Any error closes the
    connection and is raised, but one: a reused connection the server had dropped, found before
    DATA began (nothing can have been taken), is replaced by a new one and the message sent once more."""
    current = _smtp_settings()
    if _reused.backend is not None and (_reused.settings != current or time.monotonic() - _reused.last_used > IDLE_SECONDS):
        close_reused()
    attempts = (False, True) if _reused.backend is not None else (True,)
    for fresh in attempts:
        try:
            if _reused.backend is None:
                _reused.backend, _reused.settings = HookedBackend(hooks), current
                _reused.backend.open()
            backend = _reused.backend
            backend.hooks = hooks
            if backend.connection is not None:
                backend.connection.hooks = hooks
            backend.send_messages([message])
            _reused.last_used = time.monotonic()
            return
        except Exception as exc:
            close_reused()
            if fresh or hooks.data_began or not _dropped(exc):
                raise
            log.info("the mail server dropped the idle connection (%s); connecting again", type(exc).__name__)


def _dropped(exc: BaseException) -> bool:
    """Whether `exc` says the connection is gone (closed by the server, or 421: closing)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, smtplib.SMTPServerDisconnected | OSError)


def close_reused() -> None:
    backend, _reused.backend = _reused.backend, None
    if backend is not None:
        try:
            backend.close()
        except Exception as exc:  # noqa: BLE001 - the outcome is recorded already; QUIT is a courtesy
            log.info("closing the SMTP connection failed: %s", type(exc).__name__)


def reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"[:500]


@dataclass(frozen=True)
class SmtpFailure:
    """What went wrong, for the row's last_error, and whether trying again could help."""

    message: str
    permanent: bool
    # Whether the server gave a definite answer; without one after DATA began, the server may
    # have taken the message.
    answered: bool = True


def classify(exc: BaseException) -> SmtpFailure:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        (address, (code, reply)), *_ = exc.recipients.items()
        return SmtpFailure(f"The mail server refused the recipient {address}: {reply_text(code, reply)}", permanent=code >= 500)
    if isinstance(exc, smtplib.SMTPDataError):
        return SmtpFailure(
            f"The mail server refused the message: {reply_text(exc.smtp_code, exc.smtp_error)}", permanent=exc.smtp_code >= 500
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # A configuration problem (DEFAULT_FROM_EMAIL, the relay's rules) an operator can fix: retried.
        return SmtpFailure(f"The mail server refused the sender {exc.sender}: {reply_text(exc.smtp_code, exc.smtp_error)}", permanent=False)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SmtpFailure(f"The mail server refused the credentials: {reply_text(exc.smtp_code, exc.smtp_error)}", permanent=False)
    if isinstance(exc, smtplib.SMTPResponseException):
        return SmtpFailure(f"The mail server answered {reply_text(exc.smtp_code, exc.smtp_error)}", permanent=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
        return SmtpFailure(f"Could not reach the mail server: {type(exc).__name__}: {exc}"[:500], permanent=False, answered=False)
    return SmtpFailure(f"{type(exc).__name__}: {exc}"[:500], permanent=False, answered=False)
