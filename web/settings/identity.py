"""Entra ID sign-in (OpenID Connect through mozilla-django-oidc), local passwords and the
break-glass account, read from the environment; star-imported by web/settings/base.py.

Sign-in with Entra ID is on when ARC_OIDC_CLIENT_ID and ARC_OIDC_TENANT_ID are set. The
endpoints are built from the authority and the tenant, the way Entra lays them out in every cloud
(public, US Government, China), so no discovery request is needed at start-up.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ImproperlyConfigured

from posture.env import env_bool, env_list, env_secret, env_str, env_url

ARC_OIDC_CLIENT_ID = env_str("ARC_OIDC_CLIENT_ID").lower()
ARC_OIDC_CLIENT_SECRET = env_secret("ARC_OIDC_CLIENT_SECRET")
ARC_OIDC_TENANT_ID = env_str("ARC_OIDC_TENANT_ID").lower()
# Sovereign clouds: https://login.microsoftonline.us (US Government), https://login.chinacloudapi.cn.
ARC_OIDC_AUTHORITY = env_url("ARC_OIDC_AUTHORITY", "https://login.microsoftonline.com")
# A PEM bundle to trust for a private authority (the emulator); empty = the system's trust store.
ARC_OIDC_CA_FILE = env_str("ARC_OIDC_CA_FILE")

OIDC_ENABLED = bool(ARC_OIDC_CLIENT_ID or ARC_OIDC_TENANT_ID)
if OIDC_ENABLED:
    for _name, _value in (("ARC_OIDC_CLIENT_ID", ARC_OIDC_CLIENT_ID), ("ARC_OIDC_TENANT_ID", ARC_OIDC_TENANT_ID)):
        try:
            uuid.UUID(_value)
        except ValueError:
            # The tenant must be its id, not a domain: the id token's tid and issuer carry the id.
            raise ImproperlyConfigured(f"{_name} must be the GUID shown in the Entra app registration, not {_value!r}") from None
    if not ARC_OIDC_CLIENT_SECRET:
        raise ImproperlyConfigured("ARC_OIDC_CLIENT_SECRET (or ARC_OIDC_CLIENT_SECRET_FILE) must be set when ARC_OIDC_CLIENT_ID is")

_tenant_root = f"{ARC_OIDC_AUTHORITY}/{ARC_OIDC_TENANT_ID}"
# The v2.0 issuer of a single-tenant app; id tokens from any other issuer are refused.
ARC_OIDC_ISSUER = f"{_tenant_root}/v2.0"

OIDC_RP_CLIENT_ID = ARC_OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = ARC_OIDC_CLIENT_SECRET
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid profile email"
OIDC_OP_AUTHORIZATION_ENDPOINT = f"{_tenant_root}/oauth2/v2.0/authorize"
OIDC_OP_TOKEN_ENDPOINT = f"{_tenant_root}/oauth2/v2.0/token"
OIDC_OP_JWKS_ENDPOINT = f"{_tenant_root}/discovery/v2.0/keys"
# Unused: the claims (roles, groups) come from the verified id token, which Graph's userinfo lacks.
OIDC_OP_USER_ENDPOINT = ""
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_VERIFY_KID = True
OIDC_VERIFY_SSL: bool | str = ARC_OIDC_CA_FILE or True
OIDC_TIMEOUT = 10
OIDC_CREATE_USER = True
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False
OIDC_CALLBACK_CLASS = "web.oidc.views.Callback"
OIDC_AUTHENTICATE_CLASS = "web.oidc.views.Authenticate"

# Entra app role values (the `roles` claim) or group object ids (the `groups` claim) per role.
# The highest role matched wins; a user matching none is refused.
ARC_OIDC_ADMIN_ROLES = env_list("ARC_OIDC_ADMIN_ROLES", ["Posture.Admin"])
ARC_OIDC_ANALYST_ROLES = env_list("ARC_OIDC_ANALYST_ROLES", ["Posture.Analyst"])
ARC_OIDC_VIEWER_ROLES = env_list("ARC_OIDC_VIEWER_ROLES", ["Posture.Viewer"])

# Local user names and passwords; with false only ARC_BREAK_GLASS_USER may use one (logged).
LOCAL_LOGIN = env_bool("LOCAL_LOGIN", True)
ARC_BREAK_GLASS_USER = env_str("ARC_BREAK_GLASS_USER")
if not LOCAL_LOGIN and not OIDC_ENABLED and not ARC_BREAK_GLASS_USER:
    raise ImproperlyConfigured("LOCAL_LOGIN=false leaves no way to sign in: configure ARC_OIDC_* or ARC_BREAK_GLASS_USER")
