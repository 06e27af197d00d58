"""Entra ID sign-in for web apps: the v2.0 authorization code flow with PKCE, RS256 id tokens
signed with keys published as JWKS, a small sign-in page listing the directory's users, key
rotation and id-token faults (wrong audience, issuer, nonce, tenant, kid; expired).

The app registration is the emulator's own client (its id and secret); its redirect URIs are
registered through the control API, as an administrator registers them in the portal.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from azure_emulator.errors import aad_error
from azure_emulator.fleet.rand import stable_guid
from azure_emulator.messages import Request, Response, json_response

if TYPE_CHECKING:
    from azure_emulator.identity import Identity

ID_TOKEN_FAULTS = ("wrong_audience", "wrong_issuer", "wrong_nonce", "expired", "other_tenant", "unknown_kid")
CODE_LIFETIME = 600.0  # seconds; Entra's codes live about ten minutes
ID_TOKEN_LIFETIME = 3600
SCOPES = ("openid", "profile", "email", "offline_access")


@dataclass
class DirectoryUser:
    object_id: str
    name: str
    upn: str
    roles: list[str] = field(default_factory=list)  # app role values assigned for this app
    groups: list[str] = field(default_factory=list)  # group object ids

    def public(self) -> dict[str, Any]:
        return {"oid": self.object_id, "name": self.name, "upn": self.upn, "roles": self.roles, "groups": self.groups}


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    user: DirectoryUser
    nonce: str | None
    challenge: str | None
    expires_at: float
    redeemed: bool = False


class SigningKey:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        # Entra's kid is a certificate thumbprint; an RFC 7638 thumbprint is as opaque and stable.
        canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
        self.kid = _b64(hashlib.sha256(canonical.encode()).digest())
        self.jwk = {"kty": "RSA", "use": "sig", "kid": self.kid, "n": jwk["n"], "e": jwk["e"]}

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid or self.kid, "typ": "JWT"})


def default_users(tenant_id: str) -> list[DirectoryUser]:
    """A small directory: one user per Arc Posture app role, one with none, one known by group."""
    domain = "contoso.example"

    def user(key: str, name: str, roles: list[str], groups: list[str] | None = None) -> DirectoryUser:
        return DirectoryUser(stable_guid("user", tenant_id, key), name, f"{key}@{domain}", roles, groups or [])

    return [
        user("ada", "Ada Admin", ["Posture.Admin"]),
        user("ann", "Ann Analyst", ["Posture.Analyst"]),
        user("vic", "Vic Viewer", ["Posture.Viewer"]),
        user("gus", "Gus <Group> Member", [], [stable_guid("group", tenant_id, "posture-analysts")]),
        user("nor", "Nora No-Role", []),
    ]


class Entra:
    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.users = default_users(identity.tenant_id)
        self.redirect_uris: list[str] = []
        self.keys = [SigningKey()]
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    # -- control --------------------------------------------------------------------------------
    def reset(self) -> None:
        """The directory's users as generated, and no outstanding codes (keys and redirect URIs stay)."""
        with self._lock:
            self.users = default_users(self.identity.tenant_id)
            self._grants.clear()

    def rotate(self) -> str:
        """A new signing key; the old one leaves the JWKS at once (tokens it signed stop verifying)."""
        key = SigningKey()
        with self._lock:
            self.keys = [key]
        return key.kid

    def user(self, who: str) -> DirectoryUser:
        for candidate in self.users:
            if who.lower() in (candidate.object_id, candidate.upn.lower()):
                return candidate
        raise KeyError(who)

    def set_user(self, who: str, roles: list[str] | None = None, groups: list[str] | None = None) -> DirectoryUser:
        user = self.user(who)
        if roles is not None:
            user.roles = [str(r) for r in roles]
        if groups is not None:
            user.groups = [str(g) for g in groups]
        return user

    def state(self) -> dict[str, Any]:
        return {
            "users": [u.public() for u in self.users],
            "redirect_uris": list(self.redirect_uris),
            "kids": [k.kid for k in self.keys],
            "client_id": self.identity.client_id,
        }

    # -- endpoints ------------------------------------------------------------------------------
    def jwks(self) -> Response:
        return json_response(200, {"keys": [k.jwk for k in self.keys]})

    def authorize(self, request: Request, tenant: str, base_url: str) -> Response:
        params = dict(request.query)
        if request.method == "POST":
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        problem = self._check_client(params, tenant)
        if problem is not None:
            return _error_page(*problem)
        redirect_uri = params["redirect_uri"]
        state = params.get("state")
        if params.get("response_type") != "code":
            return _redirect(
                redirect_uri,
                _aad_error("unsupported_response_type", 700054, "response_type 'id_token' is not enabled for the application.", state),
            )
        if "openid" not in params.get("scope", "").split():
            return _redirect(
                redirect_uri,
                _aad_error(
                    "invalid_request", 900144, "The request body must contain the following parameter: 'scope' with 'openid'.", state
                ),
            )
        method = params.get("code_challenge_method", "plain" if params.get("code_challenge") else None)
        if method not in (None, "S256"):
            return _redirect(
                redirect_uri, _aad_error("invalid_request", 501491, "Invalid code_challenge_method. Only S256 is supported.", state)
            )
        if request.method != "POST" or "user" not in params:
            return self._sign_in_page(params, request.path)
        try:
            user = self.user(params["user"])
        except KeyError:
            return _error_page(400, "AADSTS50034", "The user account does not exist in this directory.")
        code = secrets.token_urlsafe(48)
        with self._lock:
            now = time.time()
            self._grants = {c: g for c, g in self._grants.items() if g.expires_at > now - CODE_LIFETIME}
            self._grants[code] = Grant(
                self.identity.client_id, redirect_uri, user, params.get("nonce"), params.get("code_challenge"), now + CODE_LIFETIME
            )
        answer = {"code": code, **({"state": state} if state is not None else {}), "session_state": str(stable_guid("session", code))}
        return _redirect(redirect_uri, answer)

    def token(self, form: dict[str, str], tenant: str, base_url: str, fault: str | None) -> Response:
        """grant_type=authorization_code; the client's secret is checked by the caller."""
        code = form.get("code", "")
        with self._lock:
            grant = self._grants.get(code)
            if grant is not None and grant.redeemed:
                return aad_error(
                    400,
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
                    base_url,
                )
            if grant is not None:
                grant.redeemed = True  # before any further check: a code is tried once
        if grant is None or grant.expires_at < time.time():
            return aad_error(
                400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.", base_url
            )
        if form.get("redirect_uri") != grant.redirect_uri:
            return aad_error(
                400, "invalid_grant", 50148, "The redirect_uri does not match the one used in the authorization request.", base_url
            )
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier:
                return aad_error(
                    400, "invalid_request", 50148, "The code_verifier must be provided for a code obtained with PKCE.", base_url
                )
            if not secrets.compare_digest(_b64(hashlib.sha256(verifier.encode()).digest()), grant.challenge):
                return aad_error(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    base_url,
                )
        id_token = self.id_token(grant, base_url, fault)
        return json_response(
            200,
            {
                "token_type": "Bearer",
                "scope": "openid profile email",
                "expires_in": ID_TOKEN_LIFETIME,
                "ext_expires_in": ID_TOKEN_LIFETIME,
                "access_token": secrets.token_urlsafe(32),  # for Graph in real life; nothing here accepts it
                "id_token": id_token,
            },
        )

    def id_token(self, grant: Grant, base_url: str, fault: str | None) -> str:
        now = int(time.time())
        tenant = self.identity.tenant_id
        if fault == "other_tenant":
            tenant = stable_guid("another-tenant", tenant)
        claims: dict[str, Any] = {
            "aud": grant.client_id,
            "iss": f"{base_url}/{tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "name": grant.user.name,
            "oid": grant.user.object_id,
            "preferred_username": grant.user.upn,
            "email": grant.user.upn,
            # v2.0 subjects are pairwise: one per user and app.
            "sub": _b64(hashlib.sha256(f"{grant.user.object_id}|{grant.client_id}".encode()).digest()),
            "tid": tenant,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if grant.user.roles:
            claims["roles"] = list(grant.user.roles)
        if grant.user.groups:
            claims["groups"] = list(grant.user.groups)
        if fault == "wrong_audience":
            claims["aud"] = stable_guid("another-app", grant.client_id)
        elif fault == "wrong_issuer":
            claims["iss"] = f"https://sts.windows.net/{tenant}/"  # the v1.0 issuer
        elif fault == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(24)
        elif fault == "expired":
            claims.update(iat=now - 2 * ID_TOKEN_LIFETIME, nbf=now - 2 * ID_TOKEN_LIFETIME, exp=now - ID_TOKEN_LIFETIME)
        with self._lock:
            key = self.keys[0]
        if fault == "unknown_kid":
            return SigningKey().sign(claims)  # a key no JWKS ever published
        return key.sign(claims)

    # -- helpers --------------------------------------------------------------------------------
    def _check_client(self, params: dict[str, str], tenant: str) -> tuple[int, str, str] | None:
        if tenant.lower() != self.identity.tenant_id:
            return (
                400,
                "AADSTS90002",
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            )
        client = params.get("client_id", "")
        if client.lower() != self.identity.client_id:
            return (
                400,
                "AADSTS700016",
                f"Application with identifier '{client}' was not found in the directory '{self.identity.tenant_id}'.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return (
                400,
                "AADSTS50011",
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured "
                f"for the application '{client}'.",
            )
        return None

    def _sign_in_page(self, params: dict[str, str], action: str) -> Response:
        kept = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in params.items()
            if name != "user"
        )
        rows = "".join(
            f'<li><button type="submit" name="user" value="{html.escape(u.object_id)}">{html.escape(u.name)}'
            f" <small>{html.escape(u.upn)}</small></button></li>"
            for u in self.users
        )
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>'
            f'<body><main><h1>Pick an account</h1><form method="post" action="{html.escape(action)}">{kept}<ul>{rows}</ul></form>'
            "</main></body></html>"
        )
        return _html(200, body)


def _aad_error(error: str, code: int, description: str, state: str | None) -> dict[str, str]:
    answer = {"error": error, "error_description": f"AADSTS{code}: {description}"}
    if state is not None:
        answer["state"] = state
    return answer


def _redirect(uri: str, params: dict[str, str]) -> Response:
    separator = "&" if urlsplit(uri).query else "?"
    return Response(302, b"", {"Location": f"{uri}{separator}{urlencode(params)}", "Cache-Control": "no-store"})


def _error_page(status: int, code: str, message: str) -> Response:
    """What Entra shows when it cannot send the browser back: the app or its redirect URI is wrong."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>'
        "<body><main><h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p id="error">{html.escape(code)}: {html.escape(message)}</p>'
        "</main></body></html>"
    )
    return _html(status, body)


def _html(status: int, body: str) -> Response:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    return Response(status, body.encode("utf-8"), headers)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
