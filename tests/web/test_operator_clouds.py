"""The operator's clouds and credential names: read from the environment or a mounted file, checked
at start, and the only places a scope may point at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.web.test_settings import run_manage
from web.azure_config import load_clouds, load_credential_names


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_custom_clouds_come_from_the_environment(monkeypatch: Any, ca_file: str) -> None:
    monkeypatch.setenv("ARC_CLOUDS", "stack, sovereign-2")
    monkeypatch.setenv("ARC_CLOUD_STACK_AUTHORITY", "https://login.stack.example/")
    monkeypatch.setenv("ARC_CLOUD_STACK_ARM_ENDPOINT", "https://management.stack.example")
    monkeypatch.setenv("ARC_CLOUD_STACK_CA_FILE", ca_file)
    monkeypatch.setenv("ARC_CLOUD_SOVEREIGN_2_AUTHORITY", "https://login.sovereign.example")
    monkeypatch.setenv("ARC_CLOUD_SOVEREIGN_2_ARM_ENDPOINT", "https://arm.sovereign.example:8443")
    monkeypatch.setenv("ARC_CLOUD_SOVEREIGN_2_AUDIENCE", "https://management.core.sovereign.example/")
    assert load_clouds() == {
        "stack": {
            "authority": "https://login.stack.example",
            "arm_endpoint": "https://management.stack.example",
            "audience": "https://management.stack.example",
            "ca_file": ca_file,
        },
        "sovereign-2": {
            "authority": "https://login.sovereign.example",
            "arm_endpoint": "https://arm.sovereign.example:8443",
            "audience": "https://management.core.sovereign.example",
            "ca_file": "",
        },
    }


def test_custom_clouds_come_from_a_mounted_toml_file(monkeypatch: Any, tmp_path: Path, ca_file: str) -> None:
    path = tmp_path / "clouds.toml"
    path.write_text(
        f'[clouds.stack]\nauthority = "https://login.stack.example"\narm_endpoint = "https://arm.stack.example"\nca_file = "{ca_file}"\n'
    )
    monkeypatch.setenv("ARC_CLOUDS_FILE", str(path))
    assert load_clouds()["stack"]["ca_file"] == ca_file
    monkeypatch.setenv("ARC_CLOUDS", "stack")
    with pytest.raises(ImproperlyConfigured, match="defined both in ARC_CLOUDS and in ARC_CLOUDS_FILE"):
        load_clouds()


@pytest.mark.parametrize(
    "name,variables,message",
    [
        ("stack", {"AUTHORITY": "http://login.stack.example", "ARM_ENDPOINT": "https://arm.example"}, "must be an https:// URL"),
        ("stack", {"ARM_ENDPOINT": "https://arm.example"}, "authority must be an https:// URL"),
        ("stack", {"AUTHORITY": "https://login.example/tenant", "ARM_ENDPOINT": "https://arm.example"}, "without a path"),
        ("stack", {"AUTHORITY": "https://user:pw@login.example", "ARM_ENDPOINT": "https://arm.example"}, "must be an https:// URL"),
        (
            "stack",
            {"AUTHORITY": "https://login.example", "ARM_ENDPOINT": "https://arm.example", "CA_FILE": "/nonexistent/ca.pem"},
            "not a readable file",
        ),
        ("azurecloud", {"AUTHORITY": "https://login.example", "ARM_ENDPOINT": "https://arm.example"}, "not a built-in cloud's name"),
        ("Stack", {"AUTHORITY": "https://login.example", "ARM_ENDPOINT": "https://arm.example"}, "lower-case"),
    ],
)
def test_a_wrong_cloud_definition_stops_the_start_with_a_reason(
    monkeypatch: Any, name: str, variables: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("ARC_CLOUDS", name)
    for key, value in variables.items():
        monkeypatch.setenv(f"ARC_CLOUD_{name.upper()}_{key}", value)
    with pytest.raises(ImproperlyConfigured, match=message):
        load_clouds()


def test_credential_names_are_listed_by_the_operator(monkeypatch: Any) -> None:
    assert load_credential_names() == []
    monkeypatch.setenv("ARC_CREDENTIALS", "fabrikam,corp")
    assert load_credential_names() == ["corp", "fabrikam"]
    monkeypatch.setenv("ARC_CREDENTIALS", "corp,Bad_Name")
    with pytest.raises(ImproperlyConfigured, match="ARC_CREDENTIALS: 'Bad_Name'"):
        load_credential_names()


def test_the_settings_refuse_a_cloud_sending_tokens_over_plain_http(tmp_path: Path) -> None:
    env = {"ARC_CLOUDS": "stack", "ARC_CLOUD_STACK_AUTHORITY": "http://127.0.0.1:9", "ARC_CLOUD_STACK_ARM_ENDPOINT": "https://arm.example"}
    result = run_manage(["check"], env, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "ARC_CLOUD_STACK_" in result.stderr
