"""Login throttling against password guessing, kept in the shared cache (Redis in production).

Failures are counted per user name and, with a looser limit, per client address, so one
attacker cannot lock out every user behind a shared proxy address by guessing at random names.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)
ADDRESS_FACTOR = 4


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{kind}:{digest}"


def _keys(username: str, address: str) -> list[tuple[str, int]]:
    limit = settings.LOGIN_FAILURE_LIMIT
    return [(_key("user", username), limit), (_key("addr", address), limit * ADDRESS_FACTOR)]


def is_locked(username: str, address: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(username, address))


def record_failure(username: str, address: str) -> None:
    for key, _limit in _keys(username, address):
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)
    log.warning("failed login for user name %r from %s", username[:150], address)


def reset(username: str) -> None:
    cache.delete(_key("user", username))
