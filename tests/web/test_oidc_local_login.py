"""LOCAL_LOGIN=false switches local passwords off, except the break-glass account's, whose every
use is logged; and the settings behind sign-in refuse what cannot work or is unsafe."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from django.conf import settings as live
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD, make_user
from tests.web import oidc_flow
from tests.web.oidc_flow import emulator_env, identity_settings, sign_in, signed_in_user
from tests.web.test_settings import PRODUCTION_ENV, run_manage

entra_emulator, entra = oidc_flow.entra_emulator, oidc_flow.entra  # fixtures
BREAK_GLASS = "break-glass-admin"


@pytest.fixture
def passwords_off(entra: Any, settings: Any) -> Any:
    settings.LOCAL_LOGIN = False
    settings.ARC_BREAK_GLASS_USER = BREAK_GLASS
    return make_user(BREAK_GLASS, "admin")


def password_sign_in(client: Client, username: str, url: str = "/login/") -> Any:
    return client.post(url, {"username": username, "password": PASSWORD})


@pytest.mark.django_db
def test_the_sign_in_page_shows_only_microsoft_when_local_login_is_off(passwords_off: Any) -> None:
    page = Client().get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" in page and 'name="password"' not in page


@pytest.mark.django_db
def test_a_local_password_is_refused_when_local_login_is_off(passwords_off: Any, viewer: Any) -> None:
    client = Client()
    response = password_sign_in(client, viewer.username)
    assert response.status_code == 200 and "Password sign-in is switched off" in response.content.decode()
    assert signed_in_user(client) is None
    # Through the break-glass form too: only the configured account may use it.
    assert password_sign_in(client, viewer.username, "/login/?break-glass=1").status_code == 200
    assert signed_in_user(client) is None


@pytest.mark.django_db
def test_the_break_glass_account_signs_in_and_each_use_is_logged(passwords_off: Any, caplog: pytest.LogCaptureFixture) -> None:
    form = Client().get("/login/?break-glass=1").content.decode()
    assert 'name="password"' in form and "every use is logged" in form
    client = Client()
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        wrong = client.post("/login/?break-glass=1", {"username": BREAK_GLASS, "password": "not it"})
        response = password_sign_in(client, BREAK_GLASS, "/login/?break-glass=1")
    assert wrong.status_code == 200 and response.status_code == 302 and signed_in_user(client) == passwords_off
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "web.oidc.backends"]
    assert any("break-glass sign-in failed" in m for m in warnings) and any("break-glass sign-in succeeded" in m for m in warnings)


@pytest.mark.django_db
def test_entra_sign_in_works_with_local_login_off(passwords_off: Any, entra: Any) -> None:
    client = Client()
    assert sign_in(client, entra, "ann").response.status_code == 302 and signed_in_user(client) is not None


@pytest.mark.django_db
def test_with_local_login_on_passwords_still_work_beside_entra(entra: Any, viewer: Any) -> None:
    client = Client()
    assert password_sign_in(client, viewer.username).status_code == 302 and signed_in_user(client) == viewer


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"ARC_OIDC_TENANT_ID": "contoso.onmicrosoft.com"}, "ARC_OIDC_TENANT_ID must be the GUID"),
        ({"ARC_OIDC_CLIENT_SECRET": ""}, "ARC_OIDC_CLIENT_SECRET"),
        ({"ARC_OIDC_AUTHORITY": "login.microsoftonline.us"}, "ARC_OIDC_AUTHORITY must be an absolute"),
    ],
)
def test_incomplete_or_malformed_oidc_settings_stop_the_process(
    settings: Any, monkeypatch: pytest.MonkeyPatch, override: dict[str, str], message: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    env = {"ARC_OIDC_CLIENT_ID": "11111111-2222-4333-a444-555555555555", "ARC_OIDC_TENANT_ID": "aaaaaaaa-bbbb-4ccc-addd-eeeeeeeeeeee"}
    env.update({"ARC_OIDC_CLIENT_SECRET": "s3cret", **override})
    if not env["ARC_OIDC_CLIENT_SECRET"]:
        monkeypatch.delenv("ARC_OIDC_CLIENT_SECRET", raising=False)
        del env["ARC_OIDC_CLIENT_SECRET"]
    with pytest.raises(ImproperlyConfigured, match=message):
        identity_settings(settings, monkeypatch, env)


def test_a_sovereign_cloud_authority_gives_its_endpoints_and_issuer(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = "aaaaaaaa-bbbb-4ccc-addd-eeeeeeeeeeee"
    env = {"ARC_OIDC_CLIENT_ID": "11111111-2222-4333-a444-555555555555", "ARC_OIDC_TENANT_ID": tenant, "ARC_OIDC_CLIENT_SECRET": "x"}
    identity_settings(settings, monkeypatch, {**env, "ARC_OIDC_AUTHORITY": "https://login.microsoftonline.us/"})
    assert settings.OIDC_OP_AUTHORIZATION_ENDPOINT == f"https://login.microsoftonline.us/{tenant}/oauth2/v2.0/authorize"
    assert settings.OIDC_OP_TOKEN_ENDPOINT == f"https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token"
    assert settings.OIDC_OP_JWKS_ENDPOINT == f"https://login.microsoftonline.us/{tenant}/discovery/v2.0/keys"
    assert settings.ARC_OIDC_ISSUER == f"https://login.microsoftonline.us/{tenant}/v2.0"
    assert settings.OIDC_USE_PKCE and settings.OIDC_USE_NONCE and settings.OIDC_VERIFY_SSL is True


def test_the_endpoints_built_for_the_emulator_match_its_discovery_document(entra_emulator: Any) -> None:
    env = emulator_env(entra_emulator)
    document = requests.get(
        f"{env['ARC_OIDC_AUTHORITY']}/{env['ARC_OIDC_TENANT_ID']}/v2.0/.well-known/openid-configuration",
        verify=entra_emulator.ca_file,
        timeout=10,
    ).json()
    built = SimpleNamespace()
    with pytest.MonkeyPatch.context() as patch:
        identity_settings(built, patch, env)
    assert document["authorization_endpoint"] == built.OIDC_OP_AUTHORIZATION_ENDPOINT
    assert document["token_endpoint"] == built.OIDC_OP_TOKEN_ENDPOINT
    assert document["jwks_uri"] == built.OIDC_OP_JWKS_ENDPOINT
    assert document["issuer"] == built.ARC_OIDC_ISSUER
    assert not live.OIDC_ENABLED  # the reload left the process's settings alone


def test_production_refuses_an_http_authority_and_passes_the_checklist_with_https(tmp_path: Path) -> None:
    oidc = {"ARC_OIDC_CLIENT_ID": "11111111-2222-4333-a444-555555555555", "ARC_OIDC_TENANT_ID": "aaaaaaaa-bbbb-4ccc-addd-eeeeeeeeeeee"}
    oidc["ARC_OIDC_CLIENT_SECRET"] = "s3cret-from-the-portal"
    plain = run_manage(["check"], {**PRODUCTION_ENV, **oidc, "ARC_OIDC_AUTHORITY": "http://login.example.test"}, tmp_path)
    assert plain.returncode != 0 and "ARC_OIDC_AUTHORITY" in plain.stderr and "not https" in plain.stderr
    deploy = run_manage(["check", "--deploy", "--fail-level", "WARNING"], {**PRODUCTION_ENV, **oidc, "LOCAL_LOGIN": "false"}, tmp_path)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr


def test_local_login_off_without_any_other_way_in_stops_the_process(tmp_path: Path) -> None:
    result = run_manage(["check"], {**PRODUCTION_ENV, "LOCAL_LOGIN": "false"}, tmp_path)
    assert result.returncode != 0 and "LOCAL_LOGIN=false leaves no way to sign in" in result.stderr
