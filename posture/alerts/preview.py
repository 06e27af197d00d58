"""What a rule would have sent for the last scan: the same items, recipients and messages as a
real send, built on unsaved Notification rows (nothing is written or queued).

One scan per scope the rule covers: each scope's latest finished scan, the scan whose change
events are final (planning.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils import timezone

from posture.alerts.messages import build_message
from posture.alerts.planning import scan_items
from posture.alerts.routing import message_id, recipients
from posture.models import AlertRule, Notification, Scan, Scope


@dataclass(frozen=True)
class Preview:
    recipient: str
    subject: str
    text: str
    html: str


def last_scans(rule: AlertRule) -> list[Scan]:
    """The latest finished scan of each scope `rule` covers (every scope when it names none)."""
    scopes = Scope.objects.filter(pk__in=rule.scopes) if rule.scopes else Scope.objects.all()
    finished = Scan.objects.filter(state__in=Scan.FINISHED_STATES).exclude(finished_at=None).order_by("-finished_at")
    scans = (finished.filter(scope=scope).first() for scope in scopes.order_by("name"))  # a query per scope: they are few
    return [scan for scan in scans if scan is not None]


def preview_rule(rule: AlertRule) -> list[Preview]:
    """One message per recipient and scan the rule would have sent for the last scans. An unsaved
    rule (a form not saved yet) has no subscribers: only its distribution addresses."""
    previews = []
    now = timezone.now()
    addresses = recipients(rule) if rule.pk else [(address, None) for address in rule.addresses]
    for scan in last_scans(rule):
        items = scan_items(scan, [rule]).get(rule.pk)
        if not items:
            continue
        for address, user in addresses:
            pk = uuid.uuid4()
            notification = Notification(
                id=pk,
                rule_name=rule.name,
                kind=rule.kind,
                source=f"scan:{scan.pk}",
                scan=scan,
                recipient=address,
                user=user,
                changes=items,
                message_id=message_id(pk),
                next_attempt_at=now,
                created_at=now,
            )
            message = build_message(notification)
            html = next((content for content, mimetype in message.alternatives if mimetype == "text/html"), "")
            previews.append(Preview(recipient=address, subject=_plain(message.subject), text=_plain(message.body), html=_plain(html)))
    return previews


def _plain(text: object) -> str:
    """`text` as a plain str: render_to_string marks its output safe, which a page showing the
    message must not trust (str() keeps the mark)."""
    return "".join([str(text)])
