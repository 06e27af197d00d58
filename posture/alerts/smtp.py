"""Django's SMTP backend with two hooks around the DATA command, and what an SMTP error means.

`before_data` runs after the server accepted the sender and the recipient and before DATA is
sent: the delivery records there that the server may take the message from now on (and stops if
its claim was lost). `after_data` runs as soon as the server answered 250 to the message, before
anything else can fail (QUIT, closing the socket), so a message taken is recorded as sent.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.mail.backends.smtp import EmailBackend


class ClaimLost(smtplib.SMTPException):
    """Another attempt owns the notification now: stop before DATA."""


@dataclass
class DataHooks:
    before_data: Callable[[], None]
    after_data: Callable[[str], None]


class _HookedData:
    hooks: DataHooks | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        if self.hooks is not None:
            self.hooks.before_data()
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
