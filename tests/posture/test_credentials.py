"""Scanning credentials through the real azure-identity SDK against the emulator's Entra ID:
one token per worker, certificates, the pinned fallback chain, and names nobody defined."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from azure_emulator.assertion import ClientCertificate
from posture.collect.credentials import credential_for
from posture.models import Cluster, Scan, Scope
from posture.scans.request import scan_request

pytestmark = pytest.mark.django_db(transaction=True)


def run_scan(scope: Any) -> Scan:
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    assert created
    scan.refresh_from_db()
    return scan


def token_requests(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in emulator.requests("token") if r["method"] == "POST"]


def test_a_multi_batch_scan_asks_entra_id_for_one_token(make_emulator, emulator_scope, settings) -> None:
    settings.ARC_SCAN_BATCH_SUBSCRIPTIONS = 1
    emulator = make_emulator(clusters=250)  # five subscriptions: five batches and the listing
    scan = run_scan(emulator_scope(emulator))
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert scan.batches_total == 5
    assert emulator.stats()["requests"]["token"] == 1
    assert emulator.stats()["tokens_issued"] == 1


def test_the_process_keeps_one_credential_per_tenant_cloud_and_credential_set(make_emulator, emulator_scope, monkeypatch, settings) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator)
    first = credential_for(scope)
    assert credential_for(scope) is first
    settings.ARC_CREDENTIALS = ["corp"]
    monkeypatch.setenv("AZURE_CORP_CLIENT_ID", emulator.client_id)
    monkeypatch.setenv("AZURE_CORP_CLIENT_SECRET", emulator.client_secret)
    scope.credential = "corp"
    assert credential_for(scope) is not first
    scope.credential = ""
    renewed = credential_for(scope, renew=True)  # after Azure rejected its token
    assert renewed is not first and credential_for(scope) is renewed


def test_a_certificate_credential_signs_in_with_a_signed_assertion(make_emulator, emulator_scope, monkeypatch) -> None:
    emulator = make_emulator(clusters=40)
    scope = emulator_scope(emulator)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", emulator.client_certificate_path)
    scan = run_scan(scope)
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert Cluster.objects.count() == 40
    [request] = token_requests(emulator)
    assert request["body"]["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_assertion" in request["body"] and "client_secret" not in request["body"]


def test_a_certificate_the_app_does_not_know_is_refused(make_emulator, emulator_scope, monkeypatch, tmp_path: Path) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator)
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    stranger = ClientCertificate.generate(emulator.client_id).write(tmp_path / "stranger.pem")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(stranger))
    scan = run_scan(scope)
    assert scan.state == Scan.State.FAILED
    assert "AADSTS700027" in scan.error and "certificate of" in scan.error
    assert not Cluster.objects.exists()


def test_the_fallback_chain_signs_in_to_the_scopes_tenant_trusting_its_ca_bundle(
    make_emulator, emulator_scope, monkeypatch, settings, tmp_path
) -> None:
    # "corp" has a client id but no secret, certificate or token file of its own: the
    # DefaultAzureCredential chain runs (workload identity with the pod's token file here).
    emulator = make_emulator(clusters=30)
    scope = emulator_scope(emulator)
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(emulator.federated_assertion)
    settings.ARC_CREDENTIALS = ["corp"]
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_CORP_CLIENT_ID", emulator.client_id)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_TENANT_ID", "99999999-9999-9999-9999-999999999999")  # another tenant: not the scope's
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com")
    scope.credential = "corp"
    scope.save()
    scan = run_scan(scope)
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    requests = token_requests(emulator)
    assert requests and all(r["path"] == f"/{emulator.tenant_id}/oauth2/v2.0/token" for r in requests)
    assert all("client_assertion" in r["body"] for r in requests)


def test_a_scope_naming_a_cloud_the_operator_no_longer_defines_fails_without_any_azure_call(
    make_emulator, emulator_scope, settings
) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator)
    settings.ARC_CLOUDS = {}  # the operator removed the cloud
    scan = run_scan(scope)
    assert scan.state == Scan.State.FAILED and scan.finished_at is not None
    assert "names cloud 'emulator', which is not defined (ARC_CLOUDS)" in scan.error
    assert emulator.requests() == []


def test_a_scope_naming_a_credential_the_operator_does_not_list_fails_without_any_azure_call(make_emulator, emulator_scope) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator)
    type(scope).objects.filter(pk=scope.pk).update(credential="legacy")
    scope.refresh_from_db()
    scan = run_scan(scope)
    assert scan.state == Scan.State.FAILED
    assert "names credential 'legacy', which is not listed in ARC_CREDENTIALS" in scan.error
    assert emulator.requests() == []


def test_the_fallback_chain_asks_the_azure_cli_for_the_scopes_tenant_only(monkeypatch, tmp_path: Path) -> None:
    # The Azure CLI as a process on PATH; it records how it was asked.
    calls = tmp_path / "az-calls"
    az = tmp_path / "bin" / "az"
    az.parent.mkdir()
    az.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\n'
        'echo \'{"accessToken": "cli-token", "expires_on": 4102444800, "tokenType": "Bearer", "tenant": "x"}\'\n'
    )
    az.chmod(0o755)
    monkeypatch.setenv("PATH", f"{az.parent}:{os.environ['PATH']}")
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_TENANT_ID", "99999999-9999-9999-9999-999999999999")  # the CLI's own default is not the scope's
    tenant = "11111111-2222-3333-4444-555555555555"
    scope = Scope(name="cli", tenant_id=tenant, cloud="AzureCloud")
    assert credential_for(scope).get_token("https://management.azure.com/.default").token == "cli-token"
    asked = calls.read_text().split()
    assert asked[:2] == ["account", "get-access-token"]
    assert asked[asked.index("--tenant") + 1] == tenant
