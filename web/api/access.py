"""Who may do what through the API, and how often; kept apart from web/api/base.py because DRF
imports these through its settings while its own views module loads."""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from rest_framework import permissions, throttling
from rest_framework.request import Request

from posture import tokens
from posture.models import ApiToken

VIEW = "posture.view_posture"
EXPORT = "posture.export_evidence"
MANAGE_USERS = "posture.manage_users"


class PostureAccess(permissions.BasePermission):
    """The user's role permissions (view_posture, plus the view's `required_perms`); a token may
    do only what its scopes name on top (no scopes: all its user may)."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401: an authenticator offers a challenge
        token = request.auth if isinstance(request.auth, ApiToken) else None
        scope = getattr(view, "token_scope", tokens.READ)
        if token is not None and not tokens.allows(token, scope):
            self.message = f"This token's scopes ({', '.join(token.scopes)}) do not include {scope!r}."
            return False
        needed = (VIEW, *getattr(view, "required_perms", ()))
        return all(user.has_perm(perm) for perm in needed)


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """ARC_API_RATE requests per token (or per signed-in user without one), counted in the
    "default" cache: Redis in production, so every web process shares the count.

    DRF's SimpleRateThrottle keeps every request time of the window in one cached list, read and
    rewritten whole on each call (600 floats pickled per request at 600/min, tens of thousands for
    a token with a high limit). Counted here instead in two fixed windows, the previous one
    weighted by the share of it the sliding window still covers: two small cache operations."""

    scope = "api"

    def allow_request(self, request: Request, view: Any) -> bool:
        self.key = self.get_cache_key(request, view)
        self.now = self.timer()
        window = int(self.now // self.duration)
        current = f"{self.key}:{window}"
        try:
            count = self.cache.incr(current)
        except ValueError:  # the window's first request (or a race with another process's first)
            count = 1 if self.cache.add(current, 1, self.duration * 2) else self.cache.incr(current)
        self.still_covered = 1 - (self.now % self.duration) / self.duration
        self.previous = self.cache.get(f"{self.key}:{window - 1}", 0)
        if count + self.previous * self.still_covered <= self.num_requests:
            return True
        with contextlib.suppress(ValueError):  # gone meanwhile (evicted): nothing left to give back
            self.cache.decr(current)  # a refused request does not use up the allowance
        self.accepted = count - 1
        return False

    def wait(self) -> float:
        """Seconds until one more request fits: within this window once the previous one's weight
        has faded enough, else into the next, once this one's has."""
        left, limit = self.still_covered * self.duration, self.num_requests
        if self.accepted + 1 <= limit:
            return max(1.0, left - self.duration * (limit - self.accepted - 1) / self.previous)
        return max(1.0, left + self.duration * (1 - (limit - 1) / self.accepted))

    def get_rate(self) -> str:
        return settings.ARC_API_RATE

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, ApiToken):
            # The prefix, not the pk: unique too, and never reused by another token (a pk can be,
            # by a recreated database, while the shared cache still counts the old one).
            ident = f"token:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
