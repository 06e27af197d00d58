"""Who may do what through the API, and how often; kept apart from web/api/base.py because DRF
imports these through its settings while its own views module loads."""

from __future__ import annotations

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
    "default" cache: Redis in production, so every web process shares the count."""

    scope = "api"

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
