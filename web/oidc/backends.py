"""Authentication backends: Entra ID through mozilla-django-oidc, and local passwords that
LOCAL_LOGIN=false restricts to the break-glass account.

Entra users are known by (tenant id, object id) in ExternalIdentity, never by e-mail or UPN,
which an administrator can change or hand to someone else. Their role is recomputed from the id
token's `roles` and `groups` claims at every sign-in.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from posture.models import ExternalIdentity
from posture.roles import ADMIN, ANALYST, ROLE_PERMISSIONS, VIEWER, assign_role
from web.permissions import CachedPermissionsMixin
from web.throttle import client_address

log = logging.getLogger(__name__)
# Clock skew tolerated on iat/nbf/exp, as Microsoft's own libraries allow (five minutes).
LEEWAY_SECONDS = 300


class Refused(SuspiciousOperation):
    """A sign-in refused for a reason the callback shows (see web/oidc/views.py REASONS)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def mapped_role(claims: dict[str, Any]) -> str | None:
    """The highest role whose configured app roles or group ids the claims carry."""
    held = {str(value).casefold() for key in ("roles", "groups") if isinstance(claims.get(key), list) for value in claims[key]}
    for role, setting in ((ADMIN, "ARC_OIDC_ADMIN_ROLES"), (ANALYST, "ARC_OIDC_ANALYST_ROLES"), (VIEWER, "ARC_OIDC_VIEWER_ROLES")):
        if held & {value.casefold() for value in getattr(settings, setting)}:
            return role
    return None


class EntraBackend(OIDCAuthenticationBackend):
    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        if request is None or not settings.OIDC_ENABLED or "code_verifier" not in kwargs:
            return None  # a password sign-in, or sign-in with Entra switched off
        try:
            return super().authenticate(request, **kwargs)
        except Refused as refused:
            self._refuse(request, refused)
        except requests.HTTPError as error:
            # The token endpoint's error: a replayed, expired or foreign code, or a bad client secret.
            body = _error_body(error.response)
            self._refuse(request, Refused("code", f"token endpoint answered {error.response.status_code} {body}"))
        except (requests.RequestException, ValueError) as error:
            self._refuse(request, Refused("unavailable", f"Entra ID could not be reached: {type(error).__name__}"))
        except (SuspiciousOperation, jwt.PyJWTError, KeyError) as error:
            self._refuse(request, Refused("token", f"id token refused: {type(error).__name__}: {error}"))
        return None

    def _refuse(self, request: HttpRequest, refused: Refused) -> None:
        request.oidc_refusal = refused.reason  # type: ignore[attr-defined]  # read by the callback view
        # %r: the detail quotes claims and IdP messages, which must not break the log line.
        log.warning("Entra ID sign-in refused (%s) from %s: %r", refused.reason, client_address(request), str(refused))

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Signature by a key the JWKS publishes under the token's kid (mozilla-django-oidc), then
        every claim mozilla-django-oidc leaves unchecked: audience, issuer, tenant, times, nonce."""
        if not isinstance(token, str) or not token:
            raise Refused("token", "the token endpoint answered without an id token")
        key = self.retrieve_matching_jwk(token)  # SuspiciousOperation when no published key has the kid
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=settings.OIDC_RP_CLIENT_ID,
                leeway=LEEWAY_SECONDS,
                options={"require": ["aud", "iss", "exp", "iat", "nbf", "tid", "oid"], "verify_iss": False},
            )
        except jwt.PyJWTError as error:
            raise Refused("token", f"id token refused: {type(error).__name__}: {error}") from None
        if str(claims["tid"]).lower() != settings.ARC_OIDC_TENANT_ID:
            raise Refused("tenant", f"id token from tenant {str(claims['tid'])[:64]!r}")
        if claims["iss"] != settings.ARC_OIDC_ISSUER:
            raise Refused("token", f"id token issuer {str(claims['iss'])[:200]!r} is not {settings.ARC_OIDC_ISSUER!r}")
        if kwargs.get("nonce") is None or claims.get("nonce") != kwargs["nonce"]:
            raise Refused("token", "id token nonce does not match the one sent with this sign-in")
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        return payload  # the verified id token; Entra's userinfo (Graph) has neither roles nor groups

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return True  # verify_token required tid and oid; the role is checked in get_or_create_user

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        tenant, oid = str(payload["tid"]).lower(), str(payload["oid"]).lower()
        role = mapped_role(payload)
        if role is None:
            # Removed in Entra: the role goes now, from open sessions too, and the sign-in is refused.
            for identity in ExternalIdentity.objects.select_related("user").filter(tenant_id=tenant, object_id=oid):
                identity.user.groups.remove(*identity.user.groups.filter(name__in=ROLE_PERMISSIONS))
            overage = "groups" in (payload.get("_claim_names") or {})
            hint = " (groups overage: map app roles instead)" if overage else ""
            self._refuse(self.request, Refused("no_role", f"no mapped role for {tenant}/{oid}{hint}"))
            return None
        try:
            user = self._apply(tenant, oid, role, payload)
        except IntegrityError:
            # The same account's first sign-in in two tabs at once: the other one created the rows.
            user = self._apply(tenant, oid, role, payload)
        log.info("Entra ID sign-in of %s/%s as user %s with role %s", tenant, oid, user.pk, role)
        return user

    @transaction.atomic
    def _apply(self, tenant: str, oid: str, role: str, payload: dict[str, Any]) -> Any:
        """Find or create the user of this Entra account and give it `role`, replacing any other."""
        identity = ExternalIdentity.objects.select_related("user").select_for_update().filter(tenant_id=tenant, object_id=oid).first()
        if identity is None:
            identity = ExternalIdentity(user=self._new_user(payload), tenant_id=tenant, object_id=oid)
        user = identity.user
        assign_role(user, role)
        identity.display_name = str(payload.get("name") or "")[:255]
        identity.roles_claimed = [str(v)[:200] for key in ("roles", "groups") for v in payload.get(key) or []][:100]
        identity.last_sign_in = timezone.now()
        identity.save()
        email = _valid_email(payload.get("email"))
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        return user

    def _new_user(self, claims: dict[str, Any]) -> Any:
        """A local user for a first sign-in, named after the UPN when that name is free; it has
        no usable password, so it can only ever sign in through Entra."""
        users = get_user_model()
        wanted = "".join(c for c in str(claims.get("preferred_username") or "") if c.isprintable())[:120] or "entra-user"
        name = wanted if not users.objects.filter(username=wanted).exists() else f"{wanted}#{str(claims['oid'])[:8]}"
        return users.objects.create_user(name, email=_valid_email(claims.get("email")), first_name=str(claims.get("name") or "")[:150])


class LocalPasswordBackend(CachedPermissionsMixin, ModelBackend):
    """Django's password check, and the role permissions (from the cache: web/permissions.py).
    With LOCAL_LOGIN=false only ARC_BREAK_GLASS_USER may use it, and
    every attempt of theirs is logged at WARNING."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        if username is None or settings.LOCAL_LOGIN:
            return super().authenticate(request, username=username, password=password, **kwargs)
        if not settings.ARC_BREAK_GLASS_USER or username != settings.ARC_BREAK_GLASS_USER:
            log.info("password sign-in refused: LOCAL_LOGIN is false")
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        where = client_address(request) if request is not None else "-"
        log.warning("break-glass sign-in %s for %r from %s", "succeeded" if user else "failed", username, where)
        return user


def not_a_password_attempt(request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
    """AXES_WHITELIST_CALLABLE: the OIDC callback's authenticate() call, which carries the PKCE
    verifier instead of a password, is left out of django-axes' counting."""
    return bool(credentials) and "code_verifier" in credentials and "password" not in credentials


def _valid_email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 254:
        return ""
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value


def _error_body(response: requests.Response | None) -> str:
    """The AADSTS code and error of a token endpoint answer, for the log (bounded, one line)."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return "(not JSON)"
    if not isinstance(body, dict):
        return "(unexpected body)"
    description = str(body.get("error_description", "")).split("\n", 1)[0][:200]
    return f"{str(body.get('error', ''))[:50]}: {description}"
