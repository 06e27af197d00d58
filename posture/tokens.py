"""API tokens: issued once, stored as a digest, checked on every API request.

A token reads `arcp_<prefix>_<secret>`. The prefix finds the row and tells a user's tokens apart
in the UI; the SHA-256 digest of the whole token proves it. A fast digest (not a password hash)
is enough because the secret is 256 random bits, and it keeps the check to one indexed lookup.
Written here rather than taken from django-rest-knox: knox has no scopes, names or revocation
record, and a token's rights must follow its user's role, which is all this module adds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from posture.models import ApiToken

log = logging.getLogger(__name__)

PREFIX = "arcp_"
# Scopes narrow a token below its user's role; none means "everything the role allows".
READ, EXPORT = "read", "export"
SCOPES = {READ: "Read posture, scans, governance records and the change feed", EXPORT: "Start and download evidence exports"}
# last_used_at is written at most this often per token: a busy SIEM pull is not a write per request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class TokenError(ValueError):
    """A token request that cannot be honoured (unknown scope, lifetime out of bounds)."""


def max_days() -> int:
    return int(getattr(settings, "ARC_API_TOKEN_MAX_DAYS", 90))


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(user: Any, name: str, *, days: int | None = None, scopes: list[str] | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`; the raw value is returned once and never stored."""
    days = max_days() if days is None else days
    if not 1 <= days <= max_days():
        raise TokenError(f"A token lives between 1 and {max_days()} days.")
    scopes = sorted(set(scopes or []))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise TokenError(f"Unknown scope {unknown[0]!r}; choose among {', '.join(SCOPES)}.")
    name = " ".join(name.split())[:100]
    if not name:
        raise TokenError("Give the token a name, so you can tell it apart later.")
    prefix = secrets.token_hex(4)
    raw = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, digest=digest(raw), scopes=scopes, expires_at=timezone.now() + dt.timedelta(days=days)
    )
    log.info("API token %s… (%s) issued to user %s for %s days", prefix, name, user.pk, days)
    return token, raw


def usable() -> Q:
    """Tokens that may still authenticate: not revoked, not expired, of an active user. An Entra ID
    user's role is read from Entra only at sign-in, so their tokens also stop once that user has
    not signed in for ARC_API_TOKEN_SIGN_IN_DAYS: a role removed in Entra cannot live on in a token."""
    now = timezone.now()
    signed_in_lately = Q(user__external_identity__isnull=True) | Q(
        user__external_identity__last_sign_in__gte=now - dt.timedelta(days=settings.ARC_API_TOKEN_SIGN_IN_DAYS)
    )
    return Q(revoked_at__isnull=True, expires_at__gt=now, user__is_active=True) & signed_in_lately


def verify(raw: str) -> ApiToken | None:
    """The usable token `raw` stands for, or None. Never logs `raw`."""
    if not raw.startswith(PREFIX) or raw.count("_") < 2:
        return None
    prefix = raw[len(PREFIX) :].split("_", 1)[0]
    token = ApiToken.objects.select_related("user").filter(usable(), prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.digest, digest(raw)):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def allows(token: ApiToken, scope: str) -> bool:
    return not token.scopes or scope in token.scopes


def revoke(token: ApiToken) -> bool:
    """Revoke `token`; False when it already was."""
    done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if done:
        log.info("API token %s… (%s) of user %s revoked", token.prefix, token.name, token.user_id)
    return bool(done)
