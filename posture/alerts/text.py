"""Text helpers every alert message uses: Azure strings kept on one line, links built on SITE_URL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.http import urlencode

from posture.catalog.controls import CONTROLS_BY_ID, SEVERITY_WEIGHTS
from posture.models import Scan, Status

# Statuses an item may carry besides a control's: a new cluster's, a scan's state.
_LABELS = {"new": "New cluster", **{state.value: state.label for state in Scan.State}}


def one_line(text: Any) -> str:
    """`text` with every control character (newlines, tabs, NUL) turned into a space."""
    return "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" else c for c in str(text))


def link(name: str, *args: Any, query: dict[str, str] | None = None) -> str:
    return settings.SITE_URL + reverse(name, args=args) + (f"?{urlencode(query)}" if query else "")


def status_label(value: Any) -> str:
    """A status an item carries, as people read it; anything unknown kept on one line."""
    if value in Status.values:
        return Status(value).label
    return _LABELS.get(value) or one_line(value)


def control_severity(control_id: Any) -> str:
    control = CONTROLS_BY_ID.get(control_id or "")
    return control.severity if control else ""


def item_severity(item: dict[str, Any]) -> str:
    """An item's severity; items stored before kinds carried one take their control's ("" if none)."""
    return item["severity"] if item.get("severity") in SEVERITY_WEIGHTS else control_severity(item.get("control"))
