"""Typed readers for settings that come from the environment.

Each helper fails loudly with ImproperlyConfigured on a value it cannot parse, so a typo in a
deployment stops the process at start instead of silently falling back to a default.
"""

from __future__ import annotations

import binascii
import os
from base64 import b64decode
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value.strip() == "" else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, not {number}")
    return number


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = _raw(f"{name}_FILE")
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at {path!r}, which cannot be read: {exc}") from None
    return env_str(name, default)


def base64_key(name: str, value: str, *, size: int) -> bytes | None:
    """Raw key bytes from `value` (base64 of exactly `size` bytes), None when empty. The message
    on a bad value names the variable, never the value: it is a secret."""
    if not value:
        return None
    try:
        key = b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{name} must be base64 of {size} random bytes; it is not valid base64") from None
    if len(key) != size:
        raise ImproperlyConfigured(f"{name} must be base64 of {size} random bytes, not of {len(key)}")
    return key


def database_from_url(url: str, *, conn_max_age: int = 60) -> dict[str, Any]:
    """Django DATABASES entry from postgres://user:pass@host:port/name?opt=v or sqlite:///path,
    parsed by dj-database-url (which also decodes Unix-socket hosts such as %2Fvar%2Frun%2Fpostgresql)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        if not urlsplit(url).path.lstrip("/"):
            raise ImproperlyConfigured("DATABASE_URL sqlite:/// needs a file path")
        config: dict[str, Any] = dict(dj_database_url.parse(url))
        # WAL and an immediate write lock keep the embedded default usable by a web process and
        # an in-process scan at the same time.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            **config.get("OPTIONS", {}),
        }
        return config
    if scheme in {"postgres", "postgresql", "pgsql"}:
        config = dict(dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=True))
        if not config.get("NAME"):
            raise ImproperlyConfigured("DATABASE_URL must name a database, e.g. postgres://host/arcposture")
        config.setdefault("OPTIONS", {})
        return config
    raise ImproperlyConfigured(f"DATABASE_URL scheme {scheme!r} is not supported; use postgres:// or sqlite:///")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def export_storage(var_dir: Path) -> dict[str, Any]:
    """The STORAGES entry for built exports: ARC_EXPORT_STORAGE=local (the embedded default, files
    under var_dir/exports) or azure (Blob Storage through django-storages, in ARC_EXPORT_CONTAINER,
    reached by AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME and _KEY). A build
    run again replaces its file, so both overwrite. Messages never quote the secrets."""
    if env_choice("ARC_EXPORT_STORAGE", "local", ("local", "azure")) == "local":
        options: dict[str, Any] = {"location": var_dir / "exports", "base_url": None, "allow_overwrite": True}
        return {"BACKEND": "posture.exports.storage.ExportFileStorage", "OPTIONS": options}
    container = env_str("ARC_EXPORT_CONTAINER", "exports")
    if not 3 <= len(container) <= 63:
        raise ImproperlyConfigured(f"ARC_EXPORT_CONTAINER must be 3 to 63 characters, not {container!r}")
    timeout = env_int("ARC_EXPORT_STORAGE_TIMEOUT", 60, minimum=1)
    # The SDK waits 15 s, then 45 s... between retries: minutes before an outage is reported.
    # These (its ExponentialRetry's options) wait about 1, 3 and 5 s.
    retries = env_int("ARC_EXPORT_STORAGE_RETRIES", 3, minimum=0, maximum=10)
    client = {"retry_total": retries, "initial_backoff": 1, "increment_base": 2, "connection_timeout": min(timeout, 20)}
    options = {"azure_container": container, "overwrite_files": True, "timeout": timeout, "client_options": client}
    connection_string = env_secret("AZURE_STORAGE_CONNECTION_STRING")
    account_name, account_key = env_str("AZURE_STORAGE_ACCOUNT_NAME"), env_secret("AZURE_STORAGE_ACCOUNT_KEY")
    if connection_string:
        options["connection_string"] = connection_string
    elif account_name and account_key:
        options.update(account_name=account_name, account_key=account_key)
    else:
        raise ImproperlyConfigured(
            "ARC_EXPORT_STORAGE=azure needs AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY"
        )
    return {"BACKEND": "posture.exports.storage.ExportBlobStorage", "OPTIONS": options}


def env_url(name: str, default: str) -> str:
    """An absolute http(s) URL with no query, fragment or whitespace, without its trailing slash:
    links in mail are built on it, so a typo must stop the process rather than send dead links."""
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ImproperlyConfigured(f"{name} must be an absolute http(s) URL such as https://arc.example.com, not {value!r}")
    return value.rstrip("/")
