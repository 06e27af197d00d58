"""Azure credentials from configuration. Secrets come from the environment, never the database.

A scope's `credential` names a set of variables the operator listed in ARC_CREDENTIALS: empty
reads AZURE_CLIENT_ID with AZURE_CLIENT_SECRET (or AZURE_CLIENT_SECRET_FILE),
AZURE_CLIENT_CERTIFICATE_PATH (+ AZURE_CLIENT_CERTIFICATE_PASSWORD) or AZURE_FEDERATED_TOKEN_FILE;
"corp" reads AZURE_CORP_CLIENT_ID and so on. With none of these, the DefaultAzureCredential
chain this service can use (workload identity, managed identity, Azure CLI) runs, pinned to the
scope's tenant and trusting the cloud's CA bundle.

Credentials are kept per process: they cache their tokens, so every batch of a scan in a worker
shares one token instead of asking Entra ID again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.identity import (
    AzureCliCredential,
    CertificateCredential,
    ChainedTokenCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from posture.clouds import BUILTIN, cloud_choices, credential_names, env_key, get_cloud
from posture.collect.errors import AzureError
from posture.env import env_secret, env_str

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential

    from posture.models import Scope

# Instance discovery asks login.microsoftonline.com about the authority: it knows only Azure's own.
KNOWN_AUTHORITIES = {cloud.authority.removeprefix("https://") for cloud in BUILTIN.values()}


@dataclass(frozen=True)
class Endpoints:
    authority: str
    arm_endpoint: str
    credential_scope: str
    verify: str | bool  # a CA bundle path, or True for the system trust store

    @property
    def custom_authority(self) -> bool:
        return self.authority.removeprefix("https://").rstrip("/") not in KNOWN_AUTHORITIES


def config_error(message: str) -> AzureError:
    return AzureError(message, kind="config", permanent=True)


def endpoints_for(scope: Scope) -> Endpoints:
    """The scope's cloud as the operator defined it; a name nobody defined makes no Azure call."""
    cloud = get_cloud(scope.cloud)
    if cloud is None:
        choices = ", ".join(name for name, _ in cloud_choices())
        raise config_error(f"Scope {scope.name} names cloud {scope.cloud!r}, which is not defined (ARC_CLOUDS); choose one of: {choices}.")
    return Endpoints(
        authority=cloud.authority,
        arm_endpoint=cloud.arm_endpoint.rstrip("/"),
        credential_scope=f"{cloud.audience.rstrip('/')}/.default",
        verify=cloud.ca_file or True,
    )


def _prefix(scope: Scope) -> str:
    name = (scope.credential or "").strip()
    if name not in credential_names():
        raise config_error(f"Scope {scope.name} names credential {name!r}, which is not listed in ARC_CREDENTIALS.")
    return f"AZURE_{env_key(name)}_" if name else "AZURE_"


@dataclass(frozen=True)
class CredentialSet:
    """What a credential set says in the environment (hashable: the cache key)."""

    client_id: str
    secret: str
    certificate_path: str
    certificate_password: str
    token_file: str

    @classmethod
    def read(cls, prefix: str) -> CredentialSet:
        return cls(
            client_id=env_str(f"{prefix}CLIENT_ID"),
            secret=env_secret(f"{prefix}CLIENT_SECRET"),
            certificate_path=env_str(f"{prefix}CLIENT_CERTIFICATE_PATH"),
            certificate_password=env_secret(f"{prefix}CLIENT_CERTIFICATE_PASSWORD"),
            token_file=env_str(f"{prefix}FEDERATED_TOKEN_FILE"),
        )


def describe_credential(scope: Scope) -> str:
    """Which credential a scope uses, without any secret, for admins' error messages."""
    prefix = _prefix(scope)
    conf = CredentialSet.read(prefix)
    if conf.client_id and conf.secret:
        return f"client secret of {conf.client_id} ({prefix}CLIENT_ID)"
    if conf.client_id and conf.certificate_path:
        return f"certificate of {conf.client_id} ({prefix}CLIENT_CERTIFICATE_PATH)"
    if conf.client_id and conf.token_file:
        return f"federated token of {conf.client_id} ({prefix}FEDERATED_TOKEN_FILE)"
    return "DefaultAzureCredential chain (workload identity, managed identity or Azure CLI)"


class SharedCredential:
    """One credential shared by a process's threads: concurrent first requests wait for one token
    instead of each asking Entra ID for its own."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            return self.inner.get_token(*scopes, **kwargs)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        with self._lock:
            return self.inner.get_token_info(*scopes, options=options)

    def close(self) -> None:
        """Sessions come and go; the process keeps its credentials."""


_cache: dict[tuple[Any, ...], SharedCredential] = {}
_cache_pid = os.getpid()
_cache_lock = threading.Lock()


def credential_for(scope: Scope, *, renew: bool = False) -> TokenCredential:
    """The process's credential for the scope's tenant, cloud and credential set; `renew` replaces
    it (and its cached token) after Azure rejected the token."""
    global _cache_pid
    ends = endpoints_for(scope)
    conf = CredentialSet.read(_prefix(scope))
    key = (scope.tenant_id.lower(), ends, scope.credential or "", conf)
    with _cache_lock:
        if _cache_pid != os.getpid():  # a forked worker builds its own
            _cache.clear()
            _cache_pid = os.getpid()
        if renew or key not in _cache:
            _cache[key] = SharedCredential(_build(scope.tenant_id, ends, conf))
        return _cache[key]  # type: ignore[return-value]


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _build(tenant_id: str, ends: Endpoints, conf: CredentialSet) -> Any:
    common: dict[str, Any] = {
        "authority": ends.authority,
        # A sovereign or private authority, or the emulator, is unknown to instance discovery.
        "disable_instance_discovery": ends.custom_authority,
        "connection_verify": ends.verify,
    }
    if conf.client_id and conf.secret:
        return ClientSecretCredential(tenant_id, conf.client_id, conf.secret, **common)
    if conf.client_id and conf.certificate_path:
        return CertificateCredential(
            tenant_id, conf.client_id, certificate_path=conf.certificate_path, password=conf.certificate_password or None, **common
        )
    if conf.client_id and conf.token_file:
        return WorkloadIdentityCredential(tenant_id=tenant_id, client_id=conf.client_id, token_file_path=conf.token_file, **common)
    # DefaultAzureCredential's chain, minus its developer and interactive members, each member
    # pinned to the scope's tenant (no additionally allowed tenants) and trusting the CA bundle.
    # DefaultAzureCredential itself cannot pin the Azure CLI's tenant nor skip AZURE_TENANT_ID.
    chain: list[Any] = []
    client_id = conf.client_id or env_str("AZURE_CLIENT_ID")
    token_file = env_str("AZURE_FEDERATED_TOKEN_FILE")  # injected by AKS workload identity
    if client_id and token_file:
        chain.append(WorkloadIdentityCredential(tenant_id=tenant_id, client_id=client_id, token_file_path=token_file, **common))
    chain.append(ManagedIdentityCredential(client_id=conf.client_id or None, connection_verify=ends.verify))
    chain.append(AzureCliCredential(tenant_id=tenant_id))
    return ChainedTokenCredential(*chain)
