"""The one error an export raises for a request it cannot serve (bad filters, unknown kind or format)."""

from __future__ import annotations


class ExportError(ValueError):
    """An export request that cannot be served; the message is shown to the user as is."""
