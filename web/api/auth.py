"""Who calls the API: a bearer token (posture/tokens.py), or the signed-in session for the docs
page's "Try it out" (DRF's SessionAuthentication, which enforces CSRF on unsafe methods, so
another site cannot start an export in a user's name). A token acts as its user, narrowed by
its scopes (web/api/access.py)."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from posture import tokens

REALM = 'Bearer realm="arc-posture"'


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer arcp_…`. Only the header is read: a token in a query string would
    land in access logs and browser history. The raw value is never logged or echoed."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None  # not ours: the session may still authenticate
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send one token: Authorization: Bearer arcp_….")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        token = tokens.verify(raw)
        if token is None:
            # One answer for unknown, expired and revoked tokens: no oracle for which prefix exists.
            raise exceptions.AuthenticationFailed("The token is unknown, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (with this challenge) rather than 403 to an anonymous request.
        return REALM
