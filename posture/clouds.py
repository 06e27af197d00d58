"""Clouds and credential names a scope may use: the three Azure clouds with their fixed endpoints,
and whatever the operator defined (settings.ARC_CLOUDS, settings.ARC_CREDENTIALS).

A scope stores only names. Where tokens and secrets go is the operator's decision, never an admin's.
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.identity import AzureAuthorityHosts
from django.conf import settings


@dataclass(frozen=True)
class Cloud:
    name: str
    label: str
    authority: str  # https://host of Entra ID
    arm_endpoint: str
    audience: str  # the token's resource; the cloud's Resource Manager
    ca_file: str = ""  # an extra CA bundle to trust, for a private cloud or a TLS-inspecting proxy


BUILTIN = {
    c.name: c
    for c in (
        Cloud(
            "AzureCloud",
            "Azure public cloud",
            f"https://{AzureAuthorityHosts.AZURE_PUBLIC_CLOUD}",
            "https://management.azure.com",
            "https://management.azure.com",
        ),
        Cloud(
            "AzureUSGovernment",
            "Azure US Government",
            f"https://{AzureAuthorityHosts.AZURE_GOVERNMENT}",
            "https://management.usgovcloudapi.net",
            "https://management.usgovcloudapi.net",
        ),
        Cloud(
            "AzureChinaCloud",
            "Microsoft Azure operated by 21Vianet",
            f"https://{AzureAuthorityHosts.AZURE_CHINA}",
            "https://management.chinacloudapi.cn",
            "https://management.chinacloudapi.cn",
        ),
    )
}
DEFAULT_CLOUD = "AzureCloud"


def get_cloud(name: str) -> Cloud | None:
    """The cloud a scope names, or None when neither Azure nor the operator defines it."""
    if name in BUILTIN:
        return BUILTIN[name]
    custom = getattr(settings, "ARC_CLOUDS", {}).get(name)
    if custom is None:
        return None
    return Cloud(name, f"{name} (defined by the operator)", **custom)


def cloud_choices() -> list[tuple[str, str]]:
    custom = sorted(getattr(settings, "ARC_CLOUDS", {}))
    return [(c.name, c.label) for c in BUILTIN.values()] + [(name, f"{name} (defined by the operator)") for name in custom]


def credential_names() -> list[str]:
    """ "" (the AZURE_* variables) and every name the operator listed in ARC_CREDENTIALS."""
    return ["", *getattr(settings, "ARC_CREDENTIALS", [])]


def credential_choices() -> list[tuple[str, str]]:
    return [(name, f"{name} (AZURE_{env_key(name)}_*)" if name else "Default (AZURE_*)") for name in credential_names()]


def env_key(name: str) -> str:
    return name.strip().upper().replace("-", "_")
