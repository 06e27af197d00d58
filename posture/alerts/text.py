"""Text helpers every alert message uses: Azure strings kept on one line, links built on SITE_URL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.http import urlencode


def one_line(text: Any) -> str:
    """`text` with every control character (newlines, tabs, NUL) turned into a space."""
    return "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" else c for c in str(text))


def link(name: str, *args: Any, query: dict[str, str] | None = None) -> str:
    return settings.SITE_URL + reverse(name, args=args) + (f"?{urlencode(query)}" if query else "")
