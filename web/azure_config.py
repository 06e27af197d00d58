"""The operator's Azure configuration: custom clouds and credential names.

Admins pick among these by name in the UI; only the operator (environment or a mounted file)
can say where tokens and secrets go. Read once at settings load; a mistake stops the process.

    ARC_CLOUDS=stack                        ARC_CLOUDS_FILE=/etc/arc/clouds.toml
    ARC_CLOUD_STACK_AUTHORITY=https://...   [clouds.stack]
    ARC_CLOUD_STACK_ARM_ENDPOINT=https://.. authority = "https://..."
    ARC_CLOUD_STACK_CA_FILE=/etc/ca.pem     arm_endpoint = "https://..."
    ARC_CLOUD_STACK_AUDIENCE=https://...    ca_file = "/etc/ca.pem"   # audience likewise
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from posture.clouds import env_key
from posture.env import env_list, env_str

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
CREDENTIAL_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# The built-in clouds, and the name migrated scopes with their old free-form endpoints carry.
RESERVED = {"azurecloud", "azureusgovernment", "azurechinacloud", "custom"}
KEYS = ("authority", "arm_endpoint", "audience", "ca_file")


def _https_origin(where: str, value: Any) -> str:
    parts = urlsplit(str(value or ""))
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{where} must be an https:// URL such as https://login.example.com, not {value!r}")
    if parts.path not in ("", "/"):
        raise ImproperlyConfigured(f"{where} must be a host without a path, not {value!r}")
    return f"https://{parts.netloc}"


def _cloud(where: str, name: str, raw: dict[str, Any]) -> dict[str, str]:
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise ImproperlyConfigured(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; use {', '.join(KEYS)}")
    if not NAME_RE.match(name) or name in RESERVED:
        raise ImproperlyConfigured(
            f"{where}: cloud name {name!r} must be lower-case letters, digits and hyphens (at most 32), and not a built-in cloud's name"
        )
    cloud = {
        "authority": _https_origin(f"{where} authority", raw.get("authority")),
        "arm_endpoint": _https_origin(f"{where} arm_endpoint", raw.get("arm_endpoint")),
        "ca_file": str(raw.get("ca_file") or ""),
    }
    audience = str(raw.get("audience") or "").rstrip("/")
    cloud["audience"] = audience or cloud["arm_endpoint"]
    if cloud["ca_file"] and not os.access(cloud["ca_file"], os.R_OK):
        raise ImproperlyConfigured(f"{where} ca_file {cloud['ca_file']!r} is not a readable file")
    return cloud


def load_clouds() -> dict[str, dict[str, str]]:
    """Custom clouds by name: {authority, arm_endpoint, audience, ca_file}."""
    clouds: dict[str, dict[str, str]] = {}
    path = env_str("ARC_CLOUDS_FILE")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ImproperlyConfigured(f"ARC_CLOUDS_FILE {path!r} cannot be read as TOML: {exc}") from None
        table = data.get("clouds", {})
        if not isinstance(table, dict) or set(data) - {"clouds"}:
            raise ImproperlyConfigured(f"ARC_CLOUDS_FILE {path!r} must hold only [clouds.<name>] tables")
        for name, raw in table.items():
            if not isinstance(raw, dict):
                raise ImproperlyConfigured(f"ARC_CLOUDS_FILE [clouds.{name}] must be a table")
            clouds[name] = _cloud(f"ARC_CLOUDS_FILE [clouds.{name}]", name, raw)
    for name in env_list("ARC_CLOUDS"):
        if name in clouds:
            raise ImproperlyConfigured(f"cloud {name!r} is defined both in ARC_CLOUDS and in ARC_CLOUDS_FILE")
        prefix = f"ARC_CLOUD_{env_key(name)}_"
        clouds[name] = _cloud(f"ARC_CLOUDS cloud {name!r} ({prefix}*)", name, {key: env_str(prefix + key.upper()) for key in KEYS})
    return clouds


def load_credential_names() -> list[str]:
    """Named credential sets (AZURE_<NAME>_*); the unnamed one (AZURE_*) always exists."""
    names = env_list("ARC_CREDENTIALS")
    for name in names:
        if not CREDENTIAL_RE.match(name):
            raise ImproperlyConfigured(f"ARC_CREDENTIALS: {name!r} must be lower-case letters, digits and hyphens (at most 40)")
    return sorted(set(names))
