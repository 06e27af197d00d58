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
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import caches
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
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


def usable_until(token: ApiToken) -> dt.datetime:
    """When `token`, usable now, stops being so by time alone: its expiry, or for an Entra ID
    user ARC_API_TOKEN_SIGN_IN_DAYS after their last sign-in (as usable() says). Needs
    `user__external_identity` selected."""
    identity = getattr(token.user, "external_identity", None)
    if identity is None:
        return token.expires_at
    if identity.last_sign_in is None:  # never usable (usable() agrees): nothing to keep
        return timezone.now()
    return min(token.expires_at, identity.last_sign_in + dt.timedelta(days=settings.ARC_API_TOKEN_SIGN_IN_DAYS))


# A verified token is kept in the shared cache under its digest (never the raw value), so the API
# does not run the token, user and identity query (~2 ms of ORM CPU) on every call. Revoking a
# token, saving or deleting it, its user or their Entra identity drops the entries at once
# (connect_invalidation); VERIFIED_SECONDS bounds an entry's life should a change bypass the ORM.
# Only a cache shared by every process will do: with per-process caches (the embedded default's
# LocMemCache), one process would go on honouring a token another had revoked.
VERIFIED_SECONDS = 60
_PER_PROCESS_CACHES = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


class _Verified(NamedTuple):
    token: ApiToken
    until: dt.datetime


class _VerifiedTokens:
    def _cache(self) -> Any:
        shared = settings.CACHES["default"]["BACKEND"] not in _PER_PROCESS_CACHES
        return caches["default"] if shared else None

    def get(self, proof: str) -> _Verified | None:
        cache = self._cache()
        return cache.get(f"api-token:{proof}") if cache is not None else None

    def put(self, token: ApiToken, now: dt.datetime) -> _Verified:
        entry = _Verified(token, usable_until(token))
        seconds = min(VERIFIED_SECONDS, (entry.until - now).total_seconds())
        cache = self._cache()
        if cache is not None and seconds >= 1:
            cache.set(f"api-token:{token.digest}", entry, int(seconds))
        return entry

    def forget(self, proofs: list[str]) -> None:
        cache = self._cache()
        if cache is not None and proofs:
            cache.delete_many([f"api-token:{proof}" for proof in proofs])


_verified = _VerifiedTokens()


def verified_tokens_cached() -> bool:
    """Whether verified tokens are kept between requests (only in a cache every process shares)."""
    return _verified._cache() is not None


def _forget_tokens_of(user_id: Any) -> None:
    if verified_tokens_cached():  # else nothing is kept: no query on every save of a user (each sign-in)
        _verified.forget(list(ApiToken.objects.filter(user_id=user_id).values_list("digest", flat=True)))


def _user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _forget_tokens_of(instance.pk)


def _identity_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    _forget_tokens_of(instance.user_id)


def _token_changed(sender: Any, instance: ApiToken, **kwargs: Any) -> None:
    _verified.forget([instance.digest])


def connect_invalidation() -> None:
    """Called from PostureConfig.ready, so that every process that can change these rows drops
    what the cache holds of them."""
    from django.contrib.auth import get_user_model

    from posture.models import ExternalIdentity

    for signal in (post_save, post_delete):
        signal.connect(_user_changed, sender=get_user_model(), dispatch_uid=f"tokens:user:{signal}")
        signal.connect(_identity_changed, sender=ExternalIdentity, dispatch_uid=f"tokens:identity:{signal}")
        signal.connect(_token_changed, sender=ApiToken, dispatch_uid=f"tokens:token:{signal}")


def verify(raw: str) -> ApiToken | None:
    """The usable token `raw` stands for, or None. Never logs `raw`."""
    if not raw.startswith(PREFIX) or raw.count("_") < 2:
        return None
    proof = digest(raw)
    now = timezone.now()
    entry = _verified.get(proof)
    if entry is None or entry.until <= now:
        prefix = raw[len(PREFIX) :].split("_", 1)[0]
        token = ApiToken.objects.select_related("user", "user__external_identity").filter(usable(), prefix=prefix).first()
        if token is None or not hmac.compare_digest(token.digest, proof):
            return None
        entry = _verified.put(token, now)
    token = entry.token
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        _verified.put(token, now)
    return token


def allows(token: ApiToken, scope: str) -> bool:
    return not token.scopes or scope in token.scopes


def revoke(token: ApiToken) -> bool:
    """Revoke `token`; False when it already was."""
    done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    _verified.forget([token.digest])
    if done:
        log.info("API token %s… (%s) of user %s revoked", token.prefix, token.name, token.user_id)
    return bool(done)
