"""Azure credentials from configuration. Secrets come from the environment, never the database.

A scope's `credential` field names a set of variables: empty reads AZURE_CLIENT_ID,
AZURE_CLIENT_SECRET (or AZURE_CLIENT_SECRET_FILE) and AZURE_FEDERATED_TOKEN_FILE; "corp" reads
AZURE_CORP_CLIENT_ID and so on. With neither a secret nor a federated token configured,
DefaultAzureCredential picks workload identity, managed identity or the Azure CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from azure.identity import (
    AzureAuthorityHosts,
    ClientSecretCredential,
    DefaultAzureCredential,
    WorkloadIdentityCredential,
)

from web.env import env_secret, env_str

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from posture.models import Scope


@dataclass(frozen=True)
class Cloud:
    authority: str
    arm_endpoint: str
    audience: str


CLOUDS = {
    "AzureCloud": Cloud(AzureAuthorityHosts.AZURE_PUBLIC_CLOUD, "https://management.azure.com", "https://management.azure.com"),
    "AzureUSGovernment": Cloud(
        AzureAuthorityHosts.AZURE_GOVERNMENT, "https://management.usgovcloudapi.net", "https://management.usgovcloudapi.net"
    ),
    "AzureChinaCloud": Cloud(AzureAuthorityHosts.AZURE_CHINA, "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn"),
}
KNOWN_AUTHORITIES = {c.authority.rstrip("/") for c in CLOUDS.values()}


@dataclass(frozen=True)
class Endpoints:
    authority: str
    arm_endpoint: str
    credential_scope: str
    verify: str | bool  # a CA bundle path, or True for the system trust store

    @property
    def custom_authority(self) -> bool:
        host = self.authority.removeprefix("https://").rstrip("/")
        return host not in KNOWN_AUTHORITIES


def endpoints_for(scope: Scope) -> Endpoints:
    cloud = CLOUDS.get(scope.cloud, CLOUDS["AzureCloud"])
    return Endpoints(
        authority=scope.authority or f"https://{cloud.authority}",
        arm_endpoint=(scope.arm_endpoint or cloud.arm_endpoint).rstrip("/"),
        # The token audience stays the cloud's Resource Manager even when the endpoint is a proxy.
        credential_scope=f"{cloud.audience}/.default",
        verify=scope.ca_file or True,
    )


def _prefix(scope: Scope) -> str:
    name = (scope.credential or "").strip().upper().replace("-", "_")
    return f"AZURE_{name}_" if name else "AZURE_"


def describe_credential(scope: Scope) -> str:
    """Which credential a scope uses, without any secret, for error messages and the UI."""
    prefix = _prefix(scope)
    if env_str(f"{prefix}CLIENT_ID") and env_secret(f"{prefix}CLIENT_SECRET"):
        return f"client secret of {env_str(f'{prefix}CLIENT_ID')} ({prefix}CLIENT_ID)"
    if env_str(f"{prefix}CLIENT_ID") and env_str(f"{prefix}FEDERATED_TOKEN_FILE"):
        return f"federated token of {env_str(f'{prefix}CLIENT_ID')} ({prefix}FEDERATED_TOKEN_FILE)"
    return "DefaultAzureCredential (workload identity, managed identity or Azure CLI)"


def credential_for(scope: Scope) -> TokenCredential:
    ends = endpoints_for(scope)
    prefix = _prefix(scope)
    client_id = env_str(f"{prefix}CLIENT_ID")
    secret = env_secret(f"{prefix}CLIENT_SECRET")
    token_file = env_str(f"{prefix}FEDERATED_TOKEN_FILE")
    common = {
        "authority": ends.authority,
        # Instance discovery asks login.microsoftonline.com about the authority: impossible for
        # a sovereign or private authority, and for the emulator.
        "disable_instance_discovery": ends.custom_authority,
        "connection_verify": ends.verify,
    }
    if client_id and secret:
        return ClientSecretCredential(scope.tenant_id, client_id, secret, **common)
    if client_id and token_file:
        return WorkloadIdentityCredential(tenant_id=scope.tenant_id, client_id=client_id, token_file_path=token_file, **common)
    return DefaultAzureCredential(
        authority=ends.authority,
        managed_identity_client_id=client_id or None,
        workload_identity_client_id=client_id or None,
        workload_identity_tenant_id=scope.tenant_id,
        exclude_interactive_browser_credential=True,
    )
