"""Presentation helpers. Everything returned here is plain text that the template autoescapes,
except `aria_current` (a constant) and `evidence_list` (markup built with format_html or `escaped`,
which escape every value)."""

from __future__ import annotations

import html
import json
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from posture.evaluate.scoring import NO_GRADE
from posture.models import NetworkPath, Reason, Status
from posture.remediation.commands import comment_safe
from posture.scans.progress import error_for_role

register = template.Library()


@register.filter
def scan_error(text: str, technical: bool) -> str:
    """The stored error for admins (`technical`: they manage scopes); a role-phrased one for others."""
    return text if technical else error_for_role(text)


STATUS_LABELS = dict(Status.choices)
REASON_LABELS = dict(Reason.choices)
PATH_LABELS = dict(NetworkPath.choices)


@register.filter
def status_label(value: str) -> str:
    return STATUS_LABELS.get(value, value or "Not evaluated")


@register.filter
def reason_label(value: str) -> str:
    return REASON_LABELS.get(value, value)


@register.filter
def path_label(value: str) -> str:
    return PATH_LABELS.get(value, value or "Unknown")


@register.filter
def grade_class(grade: str | None) -> str:
    return f"grade-{grade}" if grade and grade != NO_GRADE else "grade-none"


@register.filter
def number1(value: float | None) -> str:
    """A score or coverage with one decimal, or an en dash when there is none."""
    return "–" if value is None else f"{value:.1f}"


@register.filter
def signed(value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:+.1f}"
    return f"{value:+d}"


@register.filter
def share(count: int | None, total: int | None) -> float:
    """Percentage of a total, for bar lengths (0-100)."""
    return round(100.0 * (count or 0) / total, 1) if total else 0.0


@register.filter
def get_item(mapping: dict[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def evidence_value(value: Any) -> str:
    if value is None:
        return "null (missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


@register.filter
def ref_label(ref: Any) -> str:
    return ref.label()


@register.filter
def duration(value: Any) -> str:
    """A timedelta as 1 h 02 min / 3 min 05 s / 4.2 s."""
    if value is None:
        return "–"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.simple_tag
def aria_current(request: HttpRequest, *prefixes: str) -> SafeString:
    """aria-current="page" on the nav link of the area the current page belongs to."""
    match = getattr(request, "resolver_match", None)
    name = match.url_name if match else ""
    if name and any(name == p or name.startswith(p + "-") for p in prefixes):
        return mark_safe('aria-current="page"')  # noqa: S308 - a constant, no data
    return mark_safe("")  # noqa: S308


@register.filter
def tag_items(tags: dict[str, Any] | None, limit: int = 0) -> list[tuple[str, Any]]:
    """A dict's items as a list (a filter, because a hostile tag named "items" would shadow
    the `tags.items` lookup in a template)."""
    items = sorted((tags or {}).items()) if isinstance(tags, dict) else []
    return items[:limit] if limit else items


@register.filter
def tag_param(key: str, value: str) -> str:
    """A tag as `key=value` (or `key` alone): the cluster list's tag filter value (urlencode it in
    the template) and the text of a tag chip and its hover title."""
    return f"{key}={value}" if value else str(key)


@register.filter
def one_line(value: Any) -> str:
    """Text for a `# comment` line in a shown script: control characters cannot end the comment."""
    return comment_safe(str(value))


EVIDENCE_LINES_SHOWN = 20
EVIDENCE_LINE_CHARS = 300


@register.filter
def evidence_list(evidence: dict[str, Any] | None) -> SafeString:
    """A verdict's evidence as a definition list. Built here rather than with nested template
    loops, which cost a cold cluster page more than anything else on it; format_html escapes
    every key and value."""
    if not evidence or not isinstance(evidence, dict):
        return format_html('<span class="muted">{}</span>', "–")

    def lines(value: Any) -> str:
        return "".join(f'<span class="ev-line">{escaped(_clip(line))}</span>' for line in evidence_lines(value)[:EVIDENCE_LINES_SHOWN])

    items = "".join(f'<dt>{escaped(key)}</dt><dd class="mono">{lines(value)}</dd>' for key, value in tag_items(evidence))
    return mark_safe(f'<dl class="kv">{items}</dl>')  # noqa: S308 - every key and line is escaped above


def escaped(value: Any) -> str:
    """Django's conditional_escape without its lazy-string wrapper, which cost a page built from
    many small values (a cluster's controls and their evidence) more than the escaping itself:
    markup (__html__) passes, anything else is escaped as Django escapes it (quotes included)."""
    return value.__html__() if hasattr(value, "__html__") else html.escape(str(value))


def _clip(line: str) -> str:
    return line if len(line) <= EVIDENCE_LINE_CHARS else line[: EVIDENCE_LINE_CHARS - 1] + "…"


def evidence_lines(value: Any) -> list[str]:
    """An evidence value as short lines: one per list item, `key: value` pairs for objects."""

    def flat(item: Any) -> str:
        if isinstance(item, dict):
            return ", ".join(f"{k}: {evidence_value(v)}" for k, v in sorted(item.items()))
        return evidence_value(item)

    if isinstance(value, list):
        return [flat(item) for item in value] or ["[] (none)"]
    return [flat(value)]


@register.simple_tag
def select_field(field: Any) -> SafeString:
    """A bound ChoiceField as a plain <select>, built in Python: Django's widget templates cost
    an include per option, which dominated the cluster list's rendering time. Labels and values
    are escaped by format_html."""
    current = field.value()
    current = "" if current is None else str(current)
    options = format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, mark_safe(" selected") if str(value) == current else "", label) for value, label in field.field.choices),  # noqa: S308
    )
    describedby = format_html(' aria-describedby="{}_error"', field.auto_id) if field.errors else ""
    return format_html('<select name="{}" id="{}"{}>{}</select>', field.html_name, field.auto_id, describedby, options)


@register.filter
def reltime(value: Any) -> SafeString | str:
    """A timestamp as <time>: absolute (UTC) in the HTML, which cached fragments can keep, and
    shown relative ("3 hours ago") by static/js/site.js in the reader's browser."""
    if not value:
        return "–"
    shown = f"{value:%Y-%m-%d %H:%M}"
    return format_html('<time datetime="{}" data-relative title="{} UTC">{} UTC</time>', value.isoformat(), shown, shown)


@register.filter
def filter_summary(filters: dict[str, Any] | None) -> str:
    """An export's filters as `name=value; …` (several values joined by commas); "none" when the
    export took the whole fleet."""
    if not isinstance(filters, dict) or not filters:
        return "none"
    return "; ".join(f"{name}={','.join(map(str, value)) if isinstance(value, list) else value}" for name, value in sorted(filters.items()))
