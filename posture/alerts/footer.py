"""What every message carries for its recipient, whatever its kind: the one-click unsubscribe
link (body and RFC 8058 headers) and the summary of what the daily cap held back from them.

messages.build_message appends the footer to each kind's bodies, so a kind's templates need not
know about recipients. Nothing here comes from Azure: the headers hold SITE_URL and a signed
token (base64url and ':'), and rule names are kept on one line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from posture.alerts import unsubscribe
from posture.alerts.text import link, one_line
from posture.models import Notification

# Rules named one by one in the cap's summary; the rest are counted.
HELD_RULES_LISTED = 20


@dataclass
class Footer:
    headers: dict[str, str]
    text: str
    html: str

    def wrap_html(self, body: str) -> str:
        """`body` with the footer before its closing </body>, or after it when it has none."""
        head, tag, tail = body.rpartition("</body>")
        return head + self.html + tag + tail if tag else body + self.html


def footer(notification: Notification) -> Footer:
    url = unsubscribe.url(notification)
    context = {"unsubscribe_url": url, "held": held_context(notification.held_summary)}
    return Footer(
        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        text=render_to_string("emails/footer.txt", context),
        html=render_to_string("emails/footer.html", context),
    )


def held_context(summary: dict[str, Any]) -> dict[str, Any] | None:
    if not summary.get("messages"):
        return None
    rules = summary.get("rules", [])
    since = dt.datetime.fromisoformat(summary["since"]).astimezone(dt.UTC) if summary.get("since") else None
    return {
        "messages": summary["messages"],
        "changes": summary.get("changes", 0),
        "since": f"{since:%Y-%m-%d %H:%M} UTC" if since else "",
        "cap": settings.ARC_ALERT_DAILY_CAP,
        "rules": [{**r, "rule": one_line(r["rule"])} for r in rules[:HELD_RULES_LISTED]],
        "more_rules": max(len(rules) - HELD_RULES_LISTED, 0),
        "history_url": link("notification-list"),
    }
