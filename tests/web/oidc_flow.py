"""Drives Entra ID sign-in against the running emulator: the app's settings come from the same
environment variables as in production (web/settings/identity.py reloaded), the browser's part
(picking an account on Entra's page) is a plain HTTPS POST to the emulator.

Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from azure_emulator import Emulator

CALLBACK = "http://testserver/oidc/callback/"


@pytest.fixture(scope="session")
def entra_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(clusters=5, seed=17, quota=None, workdir=tmp_path_factory.mktemp("entra"), log_bodies=True) as emu:
        emu.register_redirect_uri(CALLBACK)
        yield emu


def identity_settings(settings: Any, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Apply web/settings/identity.py as it reads `env` (the rest of the environment as is)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import web.settings.identity as module

    try:
        importlib.reload(module)
        for name in dir(module):
            if name.isupper():
                setattr(settings, name, getattr(module, name))
    finally:
        for name in env:
            monkeypatch.delenv(name)
        importlib.reload(module)


def emulator_env(emu: Emulator) -> dict[str, str]:
    return {
        "ARC_OIDC_CLIENT_ID": emu.client_id,
        "ARC_OIDC_CLIENT_SECRET": emu.client_secret,
        "ARC_OIDC_TENANT_ID": emu.tenant_id,
        "ARC_OIDC_AUTHORITY": emu.base_url,
        "ARC_OIDC_CA_FILE": str(emu.ca_file),
    }


@pytest.fixture
def entra(entra_emulator: Emulator, settings: Any, monkeypatch: pytest.MonkeyPatch, db: Any) -> Iterator[Emulator]:
    """The emulator as the app's Entra ID, with its default users and keys; reset afterwards."""
    entra_emulator.reset()
    identity_settings(settings, monkeypatch, emulator_env(entra_emulator))
    settings.ARC_OIDC_ANALYST_ROLES = ["Posture.Analyst", user(entra_emulator, "gus")["groups"][0]]
    yield entra_emulator
    entra_emulator.reset()


def user(emu: Emulator, key: str) -> dict[str, Any]:
    """A directory user by the first part of their UPN (ada, ann, vic, gus, nor)."""
    return next(u for u in emu.directory() if u["upn"].startswith(f"{key}@"))


@dataclass
class Attempt:
    response: Any  # the app's answer to the callback
    callback: str  # the callback URL Entra sent the browser to (path and query)


def pick_account(emu: Emulator, authorize: str, who: str) -> str:
    """The browser's part: Entra's sign-in page, one account picked; returns where Entra sends it."""
    with requests.Session() as http:
        http.trust_env = False
        http.verify = emu.ca_file
        page = http.get(authorize)
        assert page.status_code == 200, page.text
        location = urlsplit(authorize)
        fields = dict(parse_qs(location.query, keep_blank_values=True))
        data = {name: values[0] for name, values in fields.items()}
        answer = http.post(
            f"{location.scheme}://{location.netloc}{location.path}", data={**data, "user": user(emu, who)["oid"]}, allow_redirects=False
        )
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return f"{back.path}?{back.query}"


def start(client: Client, next_url: str | None = None) -> str:
    """The app's half: /oidc/authenticate/ redirects to Entra's authorize endpoint."""
    response = client.get("/oidc/authenticate/", {"next": next_url} if next_url else {})
    assert response.status_code == 302, response
    return str(response["Location"])


def sign_in(client: Client, emu: Emulator, who: str) -> Attempt:
    callback = pick_account(emu, start(client), who)
    return Attempt(client.get(callback), callback)


def signed_in_user(client: Client) -> Any:
    from django.contrib.auth import get_user_model

    user_id = client.session.get("_auth_user_id")
    return None if user_id is None else get_user_model().objects.get(pk=user_id)
