"""The message of a notification: subject, plain-text and HTML bodies from templates/emails/,
links built on SITE_URL, and the notification's own Message-ID.

Every string from Azure (cluster names, resource groups) stays out of the headers: the subject
names the rule, the counts and the controls, never a cluster. In the bodies Azure strings are
kept on one line (no forged lines in the text), and the HTML template escapes them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from posture.alerts.digest import cap_summary_context, digest_context
from posture.alerts.footer import footer
from posture.alerts.text import link, one_line
from posture.catalog.controls import CONTROLS_BY_ID, SEVERITY_WEIGHTS
from posture.models import Notification, Status

# A message lists this many changes one by one; the rest are counted per control, with a link
# to the clusters list filtered by the control.
LISTED = 50


def _label(status: str) -> str:
    return Status(status).label if status in Status.values else one_line(status)


def message_context(notification: Notification) -> dict[str, Any]:
    """What the templates show: the changes grouped by control, most severe first."""
    by_control: dict[str, list[dict[str, Any]]] = {}
    for change in notification.changes:
        if change["control"] in CONTROLS_BY_ID:
            by_control.setdefault(change["control"], []).append(change)
    order = sorted(by_control, key=lambda c: (-SEVERITY_WEIGHTS[CONTROLS_BY_ID[c].severity], c))
    groups, room = [], LISTED
    for control_id in order:
        control, changes = CONTROLS_BY_ID[control_id], sorted(by_control[control_id], key=lambda c: (c["name"].lower(), c["cluster"]))
        shown = changes[: max(room, 0)]
        room -= len(shown)
        groups.append(
            {
                "id": control.id,
                "title": control.title,
                "severity": control.severity,
                "references": [ref.label() for ref in control.references],
                "url": link("control-detail", control.id),
                "changes": [
                    {
                        "cluster": one_line(c["name"]),
                        "url": link("cluster-detail", c["cluster"]),
                        "from": _label(c["from"]),
                        "to": _label(c["to"]),
                    }
                    for c in shown
                ],
                "more": len(changes) - len(shown),
                "more_url": link("cluster-list", query={"control": control.id}),
            }
        )
    changes = sum(len(by_control[c]) for c in order)
    return {
        "rule": one_line(notification.rule_name),
        "changes": changes,
        "clusters": len({c["cluster"] for c in notification.changes if c["control"] in by_control}),
        "controls": order,
        "groups": groups,
        "site_url": settings.SITE_URL,
        "scan_url": link("scan-detail", notification.scan_id) if notification.scan_id else "",
    }


def build_message(notification: Notification, connection: Any = None) -> EmailMultiAlternatives:
    # Digests and cap summaries have contexts of their own; every message gets its recipient's
    # footer (unsubscribe link, what the daily cap held back).
    own = {"digest": digest_context, "cap_summary": cap_summary_context}
    context = own.get(notification.kind, message_context)(notification)
    end = footer(notification)
    name = f"emails/{notification.kind}"
    subject = one_line(render_to_string(f"{name}-subject.txt", context)).strip()
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{name}-body.txt", context) + end.text,
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
    message.attach_alternative(end.wrap_html(render_to_string(f"{name}-body.html", context)), "text/html")
    return message
