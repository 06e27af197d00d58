"""Production: the same behaviour as base, with what a real deployment must configure enforced.

Served over HTTPS (directly or behind a TLS-terminating proxy), on PostgreSQL and Redis, with
collected static files. Missing or unsafe values stop the process with a clear message.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

# Production defaults that base reads from the environment; explicit values still win.
os.environ.setdefault("HTTPS", "true")
os.environ.setdefault("STATIC_COLLECTED", "true")

from web.env import env_secret, env_str  # noqa: E402
from web.settings.base import *  # noqa: E402,F403
from web.settings.base import CELERY_BROKER_URL, DATABASES, DEBUG  # noqa: E402


def _require(name: str, ok: bool, hint: str) -> None:
    if not ok:
        raise ImproperlyConfigured(f"{name}: {hint}")


_require("SECRET_KEY", len(env_secret("SECRET_KEY")) >= 50, "set SECRET_KEY (or SECRET_KEY_FILE) to 50+ random characters")
_require("DATABASE_URL", DATABASES["default"]["ENGINE"].endswith("postgresql"), "set DATABASE_URL to a postgres:// URL")
_require("CELERY_BROKER_URL", bool(CELERY_BROKER_URL), "set CELERY_BROKER_URL to a redis:// URL")
_require("ALLOWED_HOSTS", bool(env_str("ALLOWED_HOSTS")), "list the host names the app is served under")
_require("DEBUG", not DEBUG, "DEBUG must be off in production")
