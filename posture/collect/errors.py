from __future__ import annotations


class AzureError(Exception):
    """A failed Azure call, with a message a person can act on.

    `permanent` errors (401, 403, 400, a missing credential) are not retried: retrying cannot
    help and would only spend quota. Transient ones (429, 5xx, timeouts, resets, cut bodies) are.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        permanent: bool,
        status: int | None = None,
        code: str = "",
        subscriptions: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.permanent = permanent
        self.status = status
        self.code = code
        self.subscriptions = subscriptions

    def __str__(self) -> str:
        return self.message


class ForbiddenError(AzureError):
    """The identity may not read (some of) the subscriptions it asked about."""
