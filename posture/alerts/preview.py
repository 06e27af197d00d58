"""What a rule would send: the rules page's preview (issue 16, "what this rule would have sent
for the last scan").

For a kind planned at a scan's close, the preview takes the last finished scan of each scope the
rule covers and plans it as the scan's close does (planning.scan_items); for a time-based kind it
takes the episodes the next tick would plan now (timed.new_episodes). The recipients are
routing.recipients' (those receiving at once; digest subscribers get these items in their digest)
and the messages come from messages.build_message, as in a real send, on unsaved rows: nothing
is written and no task is queued. A message the daily cap would hold back is shown all the same.

One thing differs from the real send: the one-click unsubscribe link. Its signed token is the
authority to unsubscribe that recipient without a sign-in, and whoever previews a rule must not
be handed other people's: the link keeps its place with UNSUBSCRIBE_PLACEHOLDER as its token,
which unsubscribing refuses (each recipient's real message carries their own).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from posture.alerts import triggers
from posture.alerts.kinds import SCAN_KINDS, TIMED_KINDS
from posture.alerts.messages import build_message
from posture.alerts.planning import scan_items
from posture.alerts.routing import message_id, recipients
from posture.alerts.timed import new_episodes
from posture.models import AlertRule, Notification, Scan, Scope

# A preview of a time-based rule shows this many episodes' messages at most.
EPISODES_SHOWN = 20

# In place of each recipient's unsubscribe token: not signed, so unsubscribe.read refuses it.
UNSUBSCRIBE_PLACEHOLDER = "preview-not-a-link"


@dataclass(frozen=True)
class Preview:
    """One message the rule would send: to `recipient` ("" when the rule has none yet), about
    `scan` (None for a time-based kind)."""

    recipient: str
    subject: str
    text: str
    html: str
    scan: Scan | None = None


def preview_rule(rule: AlertRule) -> list[Preview]:
    """The messages `rule` would have sent for the last finished scan of each scope it covers
    (scan-based kinds), or would send now (time-based kinds), one per recipient and trigger.
    An empty list: nothing it covers. Writes nothing. `rule` may be unsaved (a form being
    filled in, its fields checked by rules.clean_rule): its distribution addresses receive."""
    now = timezone.now()
    messages: list[Preview] = []
    if rule.kind in SCAN_KINDS:
        for scan in _last_scans(rule):
            items = scan_items(scan, [rule]).get(rule.pk)
            if items:
                messages += _render(rule, items, source=f"scan:{scan.pk}", scan=scan, now=now)
    elif rule.kind in TIMED_KINDS:
        for source, candidate in new_episodes(rule, now, limit=EPISODES_SHOWN):
            messages += _render(rule, [triggers.item(candidate)], source=source, scan=None, now=now)
    return messages


def _last_scans(rule: AlertRule) -> list[Scan]:
    scopes = Scope.objects.filter(pk__in=rule.scopes) if rule.scopes else Scope.objects.all()
    scans = []
    for scope in scopes.order_by("name"):
        scan = Scan.objects.filter(scope=scope, state__in=Scan.FINISHED_STATES).select_related("scope").order_by("-created_at").first()
        if scan is not None:
            scans.append(scan)
    return scans


def _render(rule: AlertRule, items: list[dict[str, Any]], *, source: str, scan: Scan | None, now: Any) -> list[Preview]:
    # Not routing.route: it also stores digest entries and marks what the cap held back, and a
    # preview writes nothing. The same recipients receiving at once, the same rows unsaved.
    if rule.pk is not None:
        to = [(address, user) for address, user in recipients(rule)]
    else:  # a form not saved yet: no subscribers, only its distribution addresses
        to = [(address, None) for address in rule.addresses]
    rows = [_row(rule, items, source, scan, address, user, now) for address, user in to or [("", None)]]  # none yet: still show it
    previews = []
    for row in rows:
        message = build_message(row)
        html = next((content for content, mimetype in message.alternatives if mimetype == "text/html"), "")
        text, html = _placeholder_links(message.body, escape_url=False), _placeholder_links(html, escape_url=True)
        previews.append(Preview(recipient=row.recipient, subject=message.subject, text=text, html=html, scan=scan))
    return previews


def _placeholder_links(body: str, *, escape_url: bool) -> str:
    """`body` with every unsubscribe link's token (footer.py: SITE_URL and the "unsubscribe" URL
    with the token) replaced by UNSUBSCRIBE_PLACEHOLDER; in an HTML body the link is escaped."""
    marker = "-token-"
    before, _, after = (settings.SITE_URL + reverse("unsubscribe", args=[marker])).rpartition(marker)
    if escape_url:
        before, after = escape(before), escape(after)
    # A token is base64url, '.' (compressed) and ':' (signature; a timestamp in older tokens).
    pattern = re.escape(before) + r"[A-Za-z0-9_.:-]+" + re.escape(after)
    return re.sub(pattern, lambda _: before + UNSUBSCRIBE_PLACEHOLDER + after, body)


def _row(rule: AlertRule, items: list[dict[str, Any]], source: str, scan: Scan | None, address: str, user: Any, now: Any) -> Notification:
    pk = uuid.uuid4()
    return Notification(
        id=pk,
        rule=rule if rule.pk is not None else None,
        rule_name=rule.name,
        kind=rule.kind,
        source=source,
        scan=scan,
        recipient=address,
        user=user,
        changes=items,  # unsaved: no trigger, the row holds its items
        item_count=len(items),
        message_id=message_id(pk),
        next_attempt_at=now,
        created_at=now,
    )
