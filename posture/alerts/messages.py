"""The message of a notification: subject, plain-text and HTML bodies from templates/emails/,
links built on SITE_URL, and the notification's own Message-ID.

Every string from Azure (cluster names, resource groups) stays out of the headers: the subject
names the rule, the counts and the controls, never a cluster. In the bodies Azure strings are
kept on one line (no forged lines in the text), and the HTML template escapes them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from posture.alerts.digest import cap_summary_context, digest_context
from posture.alerts.footer import footer
from posture.alerts.text import link, one_line, status_label
from posture.catalog.controls import CONTROLS_BY_ID, SEVERITY_WEIGHTS
from posture.models import AlertRule, Notification

# A message lists this many changes one by one; the rest are counted per control, with a link
# to the clusters list filtered by the control.
LISTED = 50


# How the items of a kind without a control are grouped and titled.
KIND_TITLES = {
    AlertRule.Kind.SCORE_DROP: "Score dropped",
    AlertRule.Kind.CLUSTER_STALE: "Stale or offline",
    AlertRule.Kind.SCAN_FAILED: "Scan failed or throttled",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _headline(kind: str, items: list[dict[str, Any]], clusters: int) -> str:
    """What the message reports, in our words: counts, control ids and scope names (slugs we
    keep), never a string from Azure, so it may go into the subject."""
    n = len(items)
    if kind == AlertRule.Kind.SCORE_DROP:
        return f"score dropped on {_plural(clusters, 'cluster')}"
    if kind == AlertRule.Kind.CLUSTER_STALE:
        hours = min((i.get("hours") or 0 for i in items), default=0)
        return f"{_plural(clusters, 'cluster')} stale or offline for more than {hours} h"
    if kind == AlertRule.Kind.PRIVATE_LINK:
        return f"{_plural(n, 'Private Link change')} on {_plural(clusters, 'cluster')}"
    if kind == AlertRule.Kind.GOVERNANCE_EXPIRY:
        expired = sum(1 for i in items if i.get("phase") == "expired")
        parts = [f"{expired} expired"] if expired else []
        parts += [f"{n - expired} expiring"] if n - expired else []
        return f"{' and '.join(parts)} attestation or exception{'' if n == 1 else 's'}"
    if kind == AlertRule.Kind.NEW_FAILING_CLUSTER:
        return f"{_plural(clusters, 'new cluster')} failing {_plural(n, 'control')}"
    if kind == AlertRule.Kind.SCAN_FAILED:
        scan = items[0] if items else {}
        state = "failed" if scan.get("to") == "failed" else f"{scan.get('to', '')}, throttled {scan.get('throttled_minutes', 0):g} min"
        return f"scan of {scan.get('name', '')} {state}"
    return f"{_plural(n, 'regression')} on {_plural(clusters, 'cluster')}"


def _item_url(change: dict[str, Any]) -> str:
    if change.get("record") in ("attestation", "exception") and change.get("record_id"):
        return link(f"{change['record']}-detail", change["record_id"])
    if change.get("cluster"):
        return link("cluster-detail", change["cluster"])
    if change.get("scan"):
        return link("scan-detail", change["scan"])
    return ""


def _row(change: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": one_line(change["name"]),
        "url": _item_url(change),
        "from": status_label(change["from"]),
        "to": status_label(change["to"]),
        # Kind-specific detail, possibly Azure's words (a scan's error): one line, escaped in HTML.
        "note": one_line(change.get("change") or change.get("note") or change.get("error") or ""),
    }


def message_context(notification: Notification) -> dict[str, Any]:
    """What the templates show: changes of a control grouped by control, most severe first, then
    the other kinds' items grouped by kind. Items planned before they carried `kind` and
    `severity` are control regressions with their control's severity."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for change in notification.items():
        control = change.get("control") or ""
        if control and control not in CONTROLS_BY_ID:
            continue  # retired from the catalog since
        by_group.setdefault(control or f"kind:{change.get('kind', notification.kind)}", []).append(change)

    def weight(key: str) -> tuple[int, str]:
        severity = CONTROLS_BY_ID[key].severity if key in CONTROLS_BY_ID else by_group[key][0].get("severity", "low")
        return (-SEVERITY_WEIGHTS.get(severity, 0), key)

    order = sorted(by_group, key=weight)
    groups, room = [], LISTED
    for key in order:
        changes = sorted(by_group[key], key=lambda c: (one_line(c["name"]).lower(), c.get("cluster") or 0))
        shown = changes[: max(room, 0)]
        room -= len(shown)
        rows = [_row(c) for c in shown]
        group = {"changes": rows, "more": len(changes) - len(shown), "noted": any(r["note"] for r in rows)}
        if key in CONTROLS_BY_ID:
            control = CONTROLS_BY_ID[key]
            group |= {
                "id": control.id,
                "title": control.title,
                "severity": control.severity,
                "references": [ref.label() for ref in control.references],
                "url": link("control-detail", control.id),
                "more_url": link("cluster-list", query={"control": control.id}),
            }
        else:
            kind = key.removeprefix("kind:")
            group |= {
                "id": "",
                "title": KIND_TITLES.get(kind, kind),
                "severity": changes[0].get("severity", ""),
                "references": [],
                "url": "",
                "more_url": link("cluster-list"),
            }
        groups.append(group)
    items = [c for key in order for c in by_group[key]]
    clusters = len({c["cluster"] for c in items if c.get("cluster")})
    return {
        "rule": one_line(notification.rule_name),
        "kind": notification.kind,
        "headline": _headline(notification.kind, items, clusters),
        "changes": len(items),
        "clusters": clusters,
        "controls": [key for key in order if key in CONTROLS_BY_ID],
        "groups": groups,
        "site_url": settings.SITE_URL,
        "scan_url": link("scan-detail", notification.scan_id) if notification.scan_id else "",
    }


# Rendered parts of a rule's message, per trigger: every recipient of a trigger gets the same
# subject and bodies, only the footer and headers differ. A trigger's items never change once
# written, so a worker may keep the last few it rendered.
PARTS_KEPT = 32


@dataclass(frozen=True)
class Parts:
    subject: str
    text: str
    html: str


class _Recent:
    """A small least-recently-used map, shared by a worker's threads."""

    def __init__(self, size: int) -> None:
        self.size, self.kept, self.lock = size, OrderedDict[Hashable, Parts](), threading.Lock()

    def get(self, key: Hashable) -> Parts | None:
        with self.lock:
            parts = self.kept.get(key)
            if parts is not None:
                self.kept.move_to_end(key)
            return parts

    def put(self, key: Hashable, parts: Parts) -> None:
        with self.lock:
            self.kept[key] = parts
            self.kept.move_to_end(key)
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)


_recent = _Recent(PARTS_KEPT)


def _render(notification: Notification) -> Parts:
    # Digests and cap summaries have contexts of their own.
    own = {"digest": digest_context, "cap_summary": cap_summary_context}
    context = own.get(notification.kind, message_context)(notification)
    name = f"emails/{notification.kind}"
    return Parts(
        subject=one_line(render_to_string(f"{name}-subject.txt", context)).strip(),
        text=render_to_string(f"{name}-body.txt", context),
        html=render_to_string(f"{name}-body.html", context),
    )


def message_parts(notification: Notification) -> Parts:
    """The subject and bodies of `notification`, without its recipient's footer: rendered once per
    trigger in this process (what the rule's template shows depends on the trigger alone, and the
    links on SITE_URL), or for the row alone when it carries its own items."""
    if notification.trigger_id is None:
        return _render(notification)
    # The row's own fields are the trigger's (written together); created_at tells apart triggers
    # of a test database whose ids were reused.
    n = notification
    key = (n.trigger_id, n.kind, n.rule_name, n.scan_id, n.created_at, settings.SITE_URL)
    parts = _recent.get(key)
    if parts is None:
        parts = _render(notification)
        _recent.put(key, parts)
    return parts


def build_message(notification: Notification, connection: Any = None) -> EmailMultiAlternatives:
    # Every message gets its recipient's footer (unsubscribe link, what the daily cap held back)
    # and headers, after the parts shared by the trigger's recipients.
    parts = message_parts(notification)
    end = footer(notification)
    message = EmailMultiAlternatives(
        subject=parts.subject,
        body=parts.text + end.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        headers={
            "Message-ID": notification.message_id,
            # RFC 3834: no out-of-office replies or loops from automatic mail.
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
            **end.headers,  # RFC 8058 one-click unsubscribe
        },
        connection=connection,
    )
    message.attach_alternative(end.wrap_html(parts.html), "text/html")
    return message
