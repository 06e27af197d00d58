"""One-click unsubscribe (RFC 8058): a signed token in every message names its recipient and what
the link ends, and web/views/unsubscribe.py applies it without a sign-in (the token is the
authority). The token does not expire: an old message's link must keep working.

What a token ends, by the message it came with:
- a rule's message: that rule for that recipient. A user's subscription is removed; a
  distribution address (or a user's own address that the rule names) is opted out of the rule
  (AlertOptOut), so editing the rule's addresses does not bring it back silently;
- a daily digest: every daily digest of that user (their digest subscriptions and the entries
  still waiting); their immediate subscriptions stay;
- the daily cap's summary (it speaks of several rules): every rule for that recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction
from django.urls import reverse

from posture.models import AlertOptOut, AlertRule, AlertSubscription, DigestEntry, Notification

SALT = "posture.alerts.unsubscribe"
RULE, DIGESTS, EVERYTHING = "rule", "digests", "all"


def token(notification: Notification) -> str:
    """The unsubscribe token of `notification`'s recipient, for what that message speaks of."""
    who: dict[str, Any] = {"u": notification.user_id} if notification.user_id else {"a": notification.recipient.lower()}
    if notification.kind == "digest":
        what: dict[str, Any] = {"s": DIGESTS}
    elif notification.kind == "cap_summary":
        what = {"s": EVERYTHING}
    else:
        what = {"s": RULE, "r": notification.rule_id}
    # Signer, not signing.dumps: no timestamp (the token never expires), so one recipient's link
    # for one rule is the same in every message and every resend.
    return signing.Signer(salt=SALT).sign_object({**who, **what}, compress=True)


def url(notification: Notification) -> str:
    return settings.SITE_URL + reverse("unsubscribe", args=[token(notification)])


@dataclass
class Request:
    """What a valid token asks: whom (a user, or an address) and what (a rule, digests, everything)."""

    scope: str
    user: Any
    address: str
    rule: AlertRule | None

    @property
    def recipient(self) -> str:
        return self.user.email if self.user is not None else self.address

    def describe(self) -> str:
        """What unsubscribing does, for the confirmation page."""
        if self.scope == DIGESTS:
            return "stop sending every daily digest of alerts"
        if self.scope == EVERYTHING:
            return "stop sending every alert"
        if self.rule is None:
            return "stop sending the alerts of a rule that no longer exists (nothing left to do)"
        return f"stop sending the alerts of the rule “{self.rule.name}”"


class BadToken(Exception):
    """The token is tampered with, truncated or names nobody."""


def read(value: str) -> Request:
    try:
        if value.count(":") == 2:  # a link mailed before tokens lost their timestamp
            data = signing.loads(value, salt=SALT)
        else:
            data = signing.Signer(salt=SALT).unsign_object(value)
    except signing.BadSignature as exc:
        raise BadToken("The signature does not match.") from exc
    if not isinstance(data, dict) or data.get("s") not in (RULE, DIGESTS, EVERYTHING):
        raise BadToken("The token says nothing to do.")
    user = None
    if "u" in data:
        user = get_user_model().objects.filter(pk=data["u"]).first()
        if user is None:
            raise BadToken("The user it names no longer exists.")
    elif not isinstance(data.get("a"), str) or not data["a"]:
        raise BadToken("The token names no recipient.")
    rule = AlertRule.objects.filter(pk=data["r"]).first() if data["s"] == RULE and data.get("r") else None
    return Request(scope=data["s"], user=user, address=data.get("a", ""), rule=rule)


@transaction.atomic
def apply(request: Request) -> None:
    """Unsubscribe as `request` says; doing it twice changes nothing more."""
    if request.scope == RULE:
        rules = [request.rule] if request.rule is not None else []
    elif request.scope == EVERYTHING:
        rules = list(AlertRule.objects.all())
    else:
        rules = []
    if request.user is not None:
        subscriptions = AlertSubscription.objects.filter(user=request.user)
        pending = DigestEntry.objects.filter(user=request.user, notification__isnull=True)
        if request.scope == DIGESTS:
            subscriptions = subscriptions.filter(mode=AlertSubscription.Mode.DIGEST)
        elif request.scope == RULE:
            subscriptions, pending = subscriptions.filter(rule__in=rules), pending.filter(rule__in=rules)
        subscriptions.delete()
        pending.delete()
    address = (request.recipient or "").strip().lower()
    for rule in rules:
        # An address token opts out of its rule even when the rule no longer names it: adding
        # the address back later must not bring the mail back.
        named = address in {a.lower() for a in rule.addresses}
        if address and (named or (request.user is None and request.scope == RULE)):
            AlertOptOut.objects.get_or_create(rule=rule, address=address)
