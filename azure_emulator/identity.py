"""Entra ID: OpenID metadata, the client-credentials token endpoint and bearer validation."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from azure_emulator.assertion import ClientCertificate, check_assertion
from azure_emulator.errors import aad_error, arm_error
from azure_emulator.messages import Request, Response, json_response

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Audiences ARM accepts; a token for anything else gets InvalidAuthenticationTokenAudience.
ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)
MAX_REMEMBERED_TOKENS = 10_000
STALE_AFTER = 600.0  # seconds after expiry during which a token still reads as expired
TOKEN_FAILURES = ("server_error", "invalid_client", "missing_expires_in", "missing_access_token")


@dataclass
class IssuedToken:
    principal: str
    audience: str
    expires_at: float  # epoch seconds


@dataclass(frozen=True)
class Auth:
    principal: str | None  # known even when the token has expired
    error: Response | None


class Identity:
    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        federated_assertion: str,
        object_id: str,
        lifetime: int,
        certificate: ClientCertificate | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.federated_assertion = federated_assertion
        self.object_id = object_id
        self.lifetime = lifetime
        self.certificate = certificate  # registered on the app: CertificateCredential's assertions
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()

    # -- endpoints ------------------------------------------------------------------------------
    def openid_configuration(self, tenant: str, base_url: str) -> Response:
        if tenant.lower() != self.tenant_id:
            return self.unknown_tenant(tenant, base_url)
        root = f"{base_url}/{tenant}"
        return json_response(
            200,
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "issuer": f"{base_url}/{self.tenant_id}/v2.0",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "response_types_supported": ["code", "id_token", "token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nbf",
                    "nonce",
                    "name",
                    "oid",
                    "tid",
                    "preferred_username",
                    "email",
                    "roles",
                    "groups",
                    "ver",
                ],
                "code_challenge_methods_supported": ["S256"],
                "tenant_region_scope": "EU",
            },
        )

    def token(self, request: Request, tenant: str, base_url: str, failure: str | None) -> Response:
        if tenant.lower() != self.tenant_id:
            return self.unknown_tenant(tenant, base_url)
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
                base_url,
            )
        client = form.get("client_id", "")
        if client.lower() != self.client_id:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.",
                base_url,
            )
        scope = form.get("scope", "")
        audience = next((s.removesuffix("/.default") for s in scope.split() if s.endswith("/.default")), None)
        if audience is None:
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope '{scope}' is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
                base_url,
            )
        rejected = self.check_credential(form, base_url, f"{base_url}/{tenant}/oauth2/v2.0/token")
        if rejected is not None:
            return rejected
        if failure == "server_error":
            return aad_error(
                500,
                "server_error",
                50000,
                "There was an error issuing a token or an issue with our sign-in service.",
                base_url,
            )
        if failure == "invalid_client":
            return self.bad_secret(base_url)
        token = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._tokens) > MAX_REMEMBERED_TOKENS:
                self._forget_stale(time.time())
            self._tokens[token] = IssuedToken(self.client_id, audience, time.time() + self.lifetime)
        body: dict[str, object] = {
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "ext_expires_in": self.lifetime,
            "access_token": token,
        }
        if failure == "missing_expires_in":
            del body["expires_in"]
        elif failure == "missing_access_token":
            del body["access_token"]
        return json_response(200, body)

    def check_credential(self, form: dict[str, str], base_url: str, token_url: str) -> Response | None:
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER:
                return aad_error(
                    400,
                    "invalid_request",
                    50027,
                    "JWT token is invalid or malformed (unsupported client_assertion_type).",
                    base_url,
                )
            if self.certificate is not None and _signed_by_certificate(form["client_assertion"]):
                problem = check_assertion(form["client_assertion"], self.certificate, self.client_id, token_url)
                if problem is None:
                    return None
                code, _, message = problem.partition(": ")
                return aad_error(401, "invalid_client", int(code.removeprefix("AADSTS")), message, base_url)
            if not secrets.compare_digest(form["client_assertion"], self.federated_assertion):
                return aad_error(
                    401,
                    "invalid_client",
                    70021,
                    "No matching federated identity record found for presented assertion.",
                    base_url,
                )
            return None
        if "client_secret" not in form:
            return aad_error(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
                base_url,
            )
        if not secrets.compare_digest(form["client_secret"], self.client_secret):
            return self.bad_secret(base_url)
        return None

    def bad_secret(self, base_url: str) -> Response:
        return aad_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, not the client secret ID, for a secret added to app "
            f"'{self.client_id}'.",
            base_url,
        )

    def unknown_tenant(self, tenant: str, base_url: str) -> Response:
        return aad_error(
            400,
            "invalid_request",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
            base_url,
        )

    # -- bearer validation ----------------------------------------------------------------------
    def authenticate(self, request: Request, base_url: str) -> Auth:
        header = request.header("authorization")
        if not header:
            return Auth(
                None,
                self._unauthorized(
                    "AuthenticationFailed",
                    "Authentication failed. The 'Authorization' header is missing.",
                    base_url,
                ),
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Auth(
                None,
                self._unauthorized(
                    "AuthenticationFailed",
                    "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                    base_url,
                ),
            )
        with self._lock:
            issued = self._tokens.get(token.strip())
        if issued is None:
            return Auth(
                None,
                self._unauthorized("InvalidAuthenticationToken", "The access token is invalid.", base_url),
            )
        now = time.time()
        if issued.expires_at <= now:
            return Auth(
                issued.principal,
                self._unauthorized(
                    "ExpiredAuthenticationToken",
                    f"The access token expiry UTC time '{_dotnet_time(issued.expires_at)}' is "
                    "earlier than current "
                    f"UTC time '{_dotnet_time(now)}'.",
                    base_url,
                ),
            )
        if issued.audience not in ARM_AUDIENCES:
            return Auth(
                issued.principal,
                self._unauthorized(
                    "InvalidAuthenticationTokenAudience",
                    "The access token has been obtained for wrong audience or resource "
                    f"'{issued.audience}'. It "
                    "should exactly match with one of the allowed audiences " + ",".join(f"'{a}'" for a in ARM_AUDIENCES) + ".",
                    base_url,
                ),
            )
        return Auth(issued.principal, None)

    def _forget_stale(self, now: float) -> None:
        """Drop tokens expired long ago (they then read as unknown, not expired)."""
        stale = [t for t, issued in self._tokens.items() if issued.expires_at < now - STALE_AFTER]
        for token in stale:
            del self._tokens[token]

    def expire_all(self) -> None:
        with self._lock:
            past = time.time() - 1
            for issued in self._tokens.values():
                issued.expires_at = min(issued.expires_at, past)

    def _unauthorized(self, code: str, message: str, base_url: str) -> Response:
        challenge = f'Bearer authorization_uri="{base_url}/{self.tenant_id}", error="invalid_token", error_description="{message}"'
        return arm_error(401, code, message, {"WWW-Authenticate": challenge})


def _signed_by_certificate(assertion: str) -> bool:
    """A certificate's assertion names its key by thumbprint; a federated token does not."""
    head = assertion.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and ("x5t" in header or "x5t#S256" in header)


def _dotnet_time(epoch: float) -> str:
    """en-US general date/time as ARM prints it: 11/28/2025 9:59:59 AM."""
    moment = datetime.fromtimestamp(epoch, UTC)
    hour = moment.hour % 12 or 12
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d}:{moment.second:02d} {'AM' if moment.hour < 12 else 'PM'}"
