"""Entra ID endpoints and ARM bearer validation."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential, WorkloadIdentityCredential
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from azure_emulator import Emulator
from azure_emulator.identity import JWT_BEARER

from .helpers import MANAGEMENT_SCOPE, fetch_token, query


def test_it_serves_openid_metadata_with_an_https_token_endpoint_under_the_tenant(http: requests.Session, emu: Emulator) -> None:
    metadata = http.get(f"{emu.base_url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert metadata["token_endpoint"] == f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/token"
    assert metadata["token_endpoint"].startswith("https://")
    assert metadata["issuer"] == f"{emu.base_url}/{emu.tenant_id}/v2.0"


def test_it_issues_opaque_bearer_tokens_with_the_configured_lifetime(http: requests.Session, emu: Emulator) -> None:
    emu.set_token_lifetime(120)
    body = fetch_token(http, emu).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 120
    assert len(body["access_token"]) >= 32 and "." not in body["access_token"]
    assert emu.stats()["tokens_issued"] == 1


@pytest.mark.parametrize(
    ("tenant", "overrides", "status", "error", "code"),
    [
        ("11111111-2222-3333-4444-555555555555", {}, 400, "invalid_request", 90002),
        (None, {"client_id": "00000000-0000-0000-0000-000000000001"}, 400, "unauthorized_client", 700016),
        (None, {"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        (None, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        (None, {"scope": "https://management.azure.com"}, 400, "invalid_scope", 1002012),
    ],
)
def test_it_answers_aadsts_errors_for_wrong_tenant_client_or_secret(
    http: requests.Session,
    emu: Emulator,
    tenant: str | None,
    overrides: dict[str, str],
    status: int,
    error: str,
    code: int,
) -> None:
    response = fetch_token(http, emu, tenant, **overrides)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["error_codes"] == [code]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_the_sdk_raises_client_authentication_error_for_a_wrong_secret(emu: Emulator) -> None:
    credential = ClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        "not-the-secret",
        authority=emu.base_url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(MANAGEMENT_SCOPE)


def test_workload_identity_exchanges_the_federated_assertion(emu: Emulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(emu.federated_assertion)
    credential = WorkloadIdentityCredential(
        tenant_id=emu.tenant_id,
        client_id=emu.client_id,
        token_file_path=str(token_file),
        authority=emu.base_url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )
    assert credential.get_token(MANAGEMENT_SCOPE).token
    form = emu.requests("token")[-1]["body"]
    assert form["client_assertion"] == "<redacted>"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    token_file.write_text("forged.assertion.value")
    forged = WorkloadIdentityCredential(
        tenant_id=emu.tenant_id,
        client_id=emu.client_id,
        token_file_path=str(token_file),
        authority=emu.base_url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        forged.get_token(MANAGEMENT_SCOPE)


def test_it_rejects_missing_foreign_and_wrong_audience_tokens_with_a_bearer_challenge(http: requests.Session, emu: Emulator) -> None:
    url = f"{emu.base_url}/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01"
    missing = http.post(url, json={"query": "resources"})
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {"code": "AuthenticationFailed", "message": "Authentication failed. The 'Authorization' header is missing."}
    }
    challenge = missing.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization_uri="') and 'error="invalid_token"' in challenge
    assert "claims=" not in challenge
    foreign = query(http, emu, str(uuid.uuid4()), {"query": "resources"})
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")
    graph_token = fetch_token(http, emu, scope="https://graph.microsoft.com/.default").json()["access_token"]
    audience = query(http, emu, graph_token, {"query": "resources"})
    assert audience.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"


def test_a_token_used_after_expiry_gets_expired_authentication_token(http: requests.Session, emu: Emulator) -> None:
    emu.set_token_lifetime(1)
    token = fetch_token(http, emu).json()["access_token"]
    assert query(http, emu, token, {"query": "resourcecontainers | take 1"}).status_code == 200
    time.sleep(1.1)
    expired = query(http, emu, token, {"query": "resourcecontainers | take 1"})
    assert expired.status_code == 401
    error = expired.json()["error"]
    assert error["code"] == "ExpiredAuthenticationToken"
    assert error["message"].startswith("The access token expiry UTC time '")
    assert "' is earlier than current UTC time '" in error["message"]
    assert "x-ms-user-quota-remaining" in expired.headers


def test_the_sdk_surfaces_an_expired_token_as_client_authentication_error(emu: Emulator, graph: ResourceGraphClient) -> None:
    graph.resources(QueryRequest(query="resourcecontainers | take 1"))
    emu.faults.expire_tokens()  # the SDK still holds a token it believes valid for an hour
    with pytest.raises(ClientAuthenticationError) as caught:
        graph.resources(QueryRequest(query="resourcecontainers | take 1"))
    assert caught.value.error is not None and caught.value.error.code == "ExpiredAuthenticationToken"


def test_a_certificate_credential_signs_in_with_the_registered_certificate(emu: Emulator) -> None:
    credential = CertificateCredential(
        emu.tenant_id,
        emu.client_id,
        certificate_path=emu.client_certificate_path,
        authority=emu.base_url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )
    assert credential.get_token(MANAGEMENT_SCOPE).token
    form = emu.requests("token")[-1]["body"]
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" and "client_secret" not in form


def _assertion(emu: Emulator, key: Any, **claims: Any) -> str:
    thumbprint = base64.urlsafe_b64encode(emu.client_certificate.certificate.fingerprint(hashes.SHA256())).decode()
    payload = {"aud": f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/token", "iss": emu.client_id, "sub": emu.client_id}
    payload |= {"exp": int(time.time()) + 600, "jti": str(uuid.uuid4())} | claims
    # RFC 7515 compact form, PS256, as MSAL signs it.
    head = base64.urlsafe_b64encode(json.dumps({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    signature = base64.urlsafe_b64encode(key.sign(head + b"." + body, pss, hashes.SHA256())).rstrip(b"=")
    return b".".join((head, body, signature)).decode()


@pytest.mark.parametrize(
    ("signer", "claims", "code"),
    [
        ("stranger", {}, 7000274),  # names the registered certificate, signed by another key
        ("registered", {"aud": "https://login.example/token"}, 700212),
        ("registered", {"iss": "00000000-0000-0000-0000-000000000001", "sub": "00000000-0000-0000-0000-000000000001"}, 700021),
        ("registered", {"exp": 1_000_000}, 700024),
    ],
)
def test_it_refuses_certificate_assertions_that_are_forged_or_misaddressed(
    http: requests.Session, emu: Emulator, signer: str, claims: dict[str, Any], code: int
) -> None:
    registered = serialization.load_pem_private_key(emu.client_certificate.pem, password=None)
    key = registered if signer == "registered" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert fetch_token(http, emu, client_secret=None).status_code == 401  # no credential at all
    good = fetch_token(http, emu, client_secret=None, client_assertion=_assertion(emu, registered), client_assertion_type=JWT_BEARER)
    assert good.status_code == 200
    response = fetch_token(http, emu, client_secret=None, client_assertion=_assertion(emu, key, **claims), client_assertion_type=JWT_BEARER)
    assert response.status_code == 401
    assert response.json()["error_codes"] == [code]
