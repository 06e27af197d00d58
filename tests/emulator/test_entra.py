"""Entra ID user sign-in on the emulator: discovery, the sign-in page, the code flow with PKCE,
RS256 id tokens verified against the JWKS, key rotation and id-token faults."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from azure_emulator import Emulator
from azure_emulator.entra import ID_TOKEN_FAULTS

REDIRECT = "https://app.example/oidc/callback/"


@pytest.fixture
def app_registered(emu: Emulator) -> Emulator:
    emu.register_redirect_uri(REDIRECT)
    return emu


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(emu: Emulator) -> str:
    return f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/authorize"


def pick_user(http: requests.Session, emu: Emulator, user: str, verifier: str, **overrides: str) -> requests.Response:
    """The browser's part: the user picks an account on the sign-in page."""
    params = {
        "client_id": emu.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid email profile",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    return http.post(authorize_url(emu), data={**params, "user": user}, allow_redirects=False)


def redeem(http: requests.Session, emu: Emulator, code: str, verifier: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **overrides,
    }
    return http.post(f"{emu.base_url}/{emu.tenant_id}/oauth2/v2.0/token", data=form)


def sign_in(http: requests.Session, emu: Emulator, user: str = "ada@contoso.example") -> requests.Response:
    verifier = secrets.token_urlsafe(48)
    answer = pick_user(http, emu, user, verifier)
    assert answer.status_code == 302, answer.text
    return redeem(http, emu, parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0], verifier)


def verified(http: requests.Session, emu: Emulator, id_token: str) -> dict[str, Any]:
    keys = http.get(f"{emu.base_url}/{emu.tenant_id}/discovery/v2.0/keys").json()["keys"]
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
    return jwt.decode(id_token, key, algorithms=["RS256"], audience=emu.client_id, issuer=f"{emu.base_url}/{emu.tenant_id}/v2.0")


def test_discovery_names_the_sign_in_endpoints_on_the_emulator(http: requests.Session, emu: Emulator) -> None:
    document = http.get(f"{emu.base_url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert document["issuer"] == f"{emu.base_url}/{emu.tenant_id}/v2.0"
    assert document["authorization_endpoint"] == authorize_url(emu)
    assert http.get(document["jwks_uri"]).json()["keys"][0]["kty"] == "RSA"
    assert "RS256" in document["id_token_signing_alg_values_supported"]


def test_the_sign_in_page_lists_the_directory_users_escaped(http: requests.Session, app_registered: Emulator) -> None:
    emu = app_registered
    params = {"client_id": emu.client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid", "state": "s<1>"}
    page = http.get(authorize_url(emu), params=params)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Ada Admin" in page.text and "Gus &lt;Group&gt; Member" in page.text and "<Group>" not in page.text
    assert 'value="s&lt;1&gt;"' in page.text  # the state travels on, escaped


def test_a_picked_user_goes_back_with_a_code_and_the_state(http: requests.Session, app_registered: Emulator) -> None:
    answer = pick_user(http, app_registered, "ann@contoso.example", secrets.token_urlsafe(48))
    location = urlsplit(answer.headers["Location"])
    assert answer.status_code == 302 and f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert parse_qs(location.query)["state"] == ["state-1"] and parse_qs(location.query)["code"]


def test_the_id_token_verifies_against_the_jwks_and_carries_the_users_claims(http: requests.Session, app_registered: Emulator) -> None:
    emu = app_registered
    answer = sign_in(http, emu, "ada@contoso.example")
    assert answer.status_code == 200, answer.text
    claims = verified(http, emu, answer.json()["id_token"])
    ada = next(u for u in emu.directory() if u["upn"] == "ada@contoso.example")
    assert claims["oid"] == ada["oid"] and claims["tid"] == emu.tenant_id and claims["nonce"] == "nonce-1"
    assert claims["roles"] == ["Posture.Admin"] and claims["preferred_username"] == "ada@contoso.example"
    assert claims["name"] == "Ada Admin" and claims["iat"] <= claims["nbf"] + 1 and claims["exp"] > claims["iat"]
    assert jwt.get_unverified_header(answer.json()["id_token"])["alg"] == "RS256"


def test_a_code_is_redeemed_once(http: requests.Session, app_registered: Emulator) -> None:
    emu, verifier = app_registered, secrets.token_urlsafe(48)
    code = parse_qs(urlsplit(pick_user(http, emu, "vic@contoso.example", verifier).headers["Location"]).query)["code"][0]
    assert redeem(http, emu, code, verifier).status_code == 200
    replay = redeem(http, emu, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert replay.json()["error_description"].startswith("AADSTS54005:")


def test_a_wrong_pkce_verifier_is_refused_and_burns_the_code(http: requests.Session, app_registered: Emulator) -> None:
    emu, verifier = app_registered, secrets.token_urlsafe(48)
    code = parse_qs(urlsplit(pick_user(http, emu, "vic@contoso.example", verifier).headers["Location"]).query)["code"][0]
    wrong = redeem(http, emu, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and "AADSTS501481" in wrong.json()["error_description"]
    assert "AADSTS54005" in redeem(http, emu, code, verifier).json()["error_description"]


def test_a_wrong_client_secret_gets_no_token(http: requests.Session, app_registered: Emulator) -> None:
    emu, verifier = app_registered, secrets.token_urlsafe(48)
    code = parse_qs(urlsplit(pick_user(http, emu, "vic@contoso.example", verifier).headers["Location"]).query)["code"][0]
    answer = redeem(http, emu, code, verifier, client_secret="not-the-secret")
    assert answer.status_code == 401 and "AADSTS7000215" in answer.json()["error_description"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"client_id": "00000000-0000-0000-0000-000000000001"}, "AADSTS700016"), ({"redirect_uri": "https://evil.example/cb"}, "AADSTS50011")],
)
def test_an_unknown_app_or_redirect_uri_gets_an_error_page_and_no_redirect(
    http: requests.Session, app_registered: Emulator, overrides: dict[str, str], code: str
) -> None:
    answer = pick_user(http, app_registered, "ada@contoso.example", secrets.token_urlsafe(48), **overrides)
    assert answer.status_code == 400 and "Location" not in answer.headers and code in answer.text


@pytest.mark.parametrize("how", ID_TOKEN_FAULTS)
def test_id_token_faults_break_the_check_a_client_must_make(http: requests.Session, app_registered: Emulator, how: str) -> None:
    emu = app_registered
    http.post(f"{emu.base_url}/_emu/faults", json={"type": "id_token", "how": how}).raise_for_status()
    token = sign_in(http, emu).json()["id_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    expected_error = {
        "wrong_audience": jwt.InvalidAudienceError,
        "wrong_issuer": jwt.InvalidIssuerError,
        "expired": jwt.ExpiredSignatureError,
        "other_tenant": jwt.InvalidIssuerError,
        "unknown_kid": StopIteration,
    }
    if how == "wrong_nonce":
        assert claims["nonce"] != "nonce-1"
    else:
        with pytest.raises(expected_error[how]):
            verified(http, emu, token)
    if how == "other_tenant":
        assert claims["tid"] != emu.tenant_id
    assert verified(http, emu, sign_in(http, emu).json()["id_token"])["nonce"] == "nonce-1"  # one fault, then normal service


def test_key_rotation_publishes_the_new_key_and_drops_the_old(http: requests.Session, app_registered: Emulator) -> None:
    emu = app_registered
    before = sign_in(http, emu).json()["id_token"]
    answer = http.post(f"{emu.base_url}/_emu/entra/rotate").json()
    assert answer["kids"] == [answer["kid"]] and jwt.get_unverified_header(before)["kid"] not in answer["kids"]
    with pytest.raises(StopIteration):  # no published key for the old token any more
        verified(http, emu, before)
    after = sign_in(http, emu).json()["id_token"]
    assert jwt.get_unverified_header(after)["kid"] == answer["kid"] and verified(http, emu, after)


def test_roles_and_groups_set_in_entra_reach_the_next_token(http: requests.Session, app_registered: Emulator) -> None:
    emu = app_registered
    changed = http.post(f"{emu.base_url}/_emu/entra/user", json={"user": "ada@contoso.example", "roles": [], "groups": ["g-1"]})
    assert changed.json()["user"]["roles"] == []
    claims = verified(http, emu, sign_in(http, emu).json()["id_token"])
    assert "roles" not in claims and claims["groups"] == ["g-1"]
    emu.reset()
    assert verified(http, emu, sign_in(http, emu).json()["id_token"])["roles"] == ["Posture.Admin"]


def test_the_control_api_refuses_an_unknown_user(http: requests.Session, emu: Emulator) -> None:
    answer = http.post(f"{emu.base_url}/_emu/entra/user", json={"user": "nobody@contoso.example", "roles": []})
    assert answer.status_code == 404


def test_the_cli_registers_redirect_uris(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "azure_emulator", "serve", "--clusters", "5", "--quota", "off", "--workdir", str(tmp_path)]
    command += ["--redirect-uri", "http://127.0.0.1:8000/oidc/callback/", "--redirect-uri", REDIRECT]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        with requests.Session() as session:
            session.trust_env = False
            state = session.get(f"{info['base_url']}/_emu/entra", verify=info["ca_file"]).json()
        assert state["redirect_uris"] == ["http://127.0.0.1:8000/oidc/callback/", REDIRECT]
        assert state["client_id"] == info["client_id"] and len(state["users"]) == 5
    finally:
        process.terminate()
        process.wait(timeout=10)
