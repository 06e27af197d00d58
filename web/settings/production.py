"""Production: the same behaviour as base, with what a real deployment must configure enforced.

Served over HTTPS (directly or behind a TLS-terminating proxy), on PostgreSQL and Redis, with
collected static files. Missing or unsafe values stop the process with a clear message.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# Production defaults that base reads from the environment; explicit values still win.
os.environ.setdefault("HTTPS", "true")
os.environ.setdefault("STATIC_COLLECTED", "true")
os.environ.setdefault("ARC_EXCEPTION_FOUR_EYES", "true")

from posture.env import env_bool, env_secret, env_str  # noqa: E402
from web.settings.base import *  # noqa: E402,F403
from web.settings.base import ALLOWED_HOSTS, CELERY_BROKER_URL, DATABASES, DEBUG, EVIDENCE_SIGNING_KEY, HTTPS, SITE_URL  # noqa: E402
from web.settings.identity import ARC_OIDC_AUTHORITY, OIDC_ENABLED  # noqa: E402

ALLOW_INSECURE = env_bool("ARC_ALLOW_INSECURE", False)


def _require(name: str, ok: bool, hint: str) -> None:
    if not ok:
        raise ImproperlyConfigured(f"{name}: {hint}")


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".")
    if host == "localhost" or host.endswith(".localhost") or host == "localhost.localdomain":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _refuse_unsafe(name: str, unsafe: bool, hint: str) -> None:
    # A trial may run with these on purpose; it has to say so.
    if unsafe and not ALLOW_INSECURE:
        raise ImproperlyConfigured(f"{name}: {hint}. To run insecurely anyway (a local trial only), set ARC_ALLOW_INSECURE=true.")


_require("SECRET_KEY", len(env_secret("SECRET_KEY")) >= 50, "set SECRET_KEY (or SECRET_KEY_FILE) to 50+ random characters")
_require("DATABASE_URL", DATABASES["default"]["ENGINE"].endswith("postgresql"), "set DATABASE_URL to a postgres:// URL")
_require("CELERY_BROKER_URL", bool(CELERY_BROKER_URL), "set CELERY_BROKER_URL to a redis:// URL")
_require("ALLOWED_HOSTS", bool(env_str("ALLOWED_HOSTS")), "list the host names the app is served under")
_require("DEBUG", not DEBUG, "DEBUG must be off in production")
_refuse_unsafe(
    "SECRET_KEY",
    "change-me" in env_secret("SECRET_KEY").lower(),
    "this is the placeholder from .env.example, which anyone can read; generate a key of your own",
)
_refuse_unsafe("ALLOWED_HOSTS", "*" in ALLOWED_HOSTS, "* accepts any Host header; list the host names the app is served under")
_refuse_unsafe("HTTPS", not HTTPS, "HTTPS=false sends passwords and session cookies in clear text; serve the app over TLS")
_refuse_unsafe(
    "EVIDENCE_SIGNING_KEY",
    EVIDENCE_SIGNING_KEY is None,
    "set EVIDENCE_SIGNING_KEY (or EVIDENCE_SIGNING_KEY_FILE) to base64 of 32 random bytes; without it each "
    "container would sign evidence with a key of its own under var/, which the dashboard does not publish",
)
# Links in alerts are built on SITE_URL: mailed to people on other machines, a loopback address
# leads nowhere (or to the reader's own machine), and plain http sends them to the sign-in page in clear.
_require("SITE_URL", bool(env_str("SITE_URL")), "set SITE_URL to the https address users reach the dashboard at")
_refuse_unsafe(
    "SITE_URL",
    _loopback(SITE_URL),
    f"{SITE_URL} is a loopback address, so every link in an alert would lead to the reader's own machine; "
    "set the public https address users reach the dashboard at",
)
_refuse_unsafe("SITE_URL", not SITE_URL.startswith("https://"), f"{SITE_URL} is not https: links in alerts would be followed in clear text")
# Sign-in with Entra ID: codes, client secret and id tokens must not cross the network in clear.
_refuse_unsafe(
    "ARC_OIDC_AUTHORITY",
    OIDC_ENABLED and not ARC_OIDC_AUTHORITY.startswith("https://"),
    f"{ARC_OIDC_AUTHORITY} is not https: the client secret and id tokens would travel in clear text",
)
