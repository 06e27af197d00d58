"""Every way an Entra ID sign-in can be wrong is refused with a 403 page and a log line, never a
500 and never a session: forged or replayed callbacks, replayed codes, tokens from another
tenant, for another app, from another issuer, with another nonce, expired or signed by an
unpublished key."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.test import Client

from posture.models import ExternalIdentity
from tests.web import oidc_flow
from tests.web.oidc_flow import pick_account, sign_in, signed_in_user, start

entra_emulator, entra = oidc_flow.entra_emulator, oidc_flow.entra  # fixtures
pytestmark = pytest.mark.django_db


def assert_refused(response: Any, client: Client, text: str) -> None:
    assert response.status_code == 403, response
    page = response.content.decode()
    assert "Sign-in refused" in page and text in page, page
    assert signed_in_user(client) is None


def test_a_callback_with_a_forged_state_is_refused_and_logged(entra: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = Client()
    start(client)  # a real flow is pending in this session, under another state
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        response = client.get("/oidc/callback/", {"code": "stolen-code", "state": "forged-state"})
    assert_refused(response, client, "did not start here")
    assert "unknown or spent state" in caplog.text
    assert not [r for r in entra.requests("token") if b"stolen-code" in str(r).encode()]  # the code is never tried


def test_a_forged_callback_or_error_does_not_sign_out_an_open_session(entra: Any) -> None:
    client = Client()
    sign_in(client, entra, "vic")
    signed_in = signed_in_user(client)
    assert client.get("/oidc/callback/", {"code": "c", "state": "forged"}).status_code == 403
    assert client.get("/oidc/callback/", {"error": "access_denied", "state": "forged"}).status_code == 403
    assert signed_in_user(client) == signed_in


def test_a_callback_without_any_pending_sign_in_is_refused(entra: Any) -> None:
    client = Client()
    assert_refused(client.get("/oidc/callback/", {"code": "c", "state": "s"}), client, "did not start here")


def test_a_replayed_callback_is_refused(entra: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = Client()
    attempt = sign_in(client, entra, "ann")
    assert attempt.response.status_code == 302
    client.logout()
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        response = client.get(attempt.callback)
    assert_refused(response, client, "did not start here")
    assert "spent state" in caplog.text


def test_a_replayed_code_is_refused_by_entra_and_logged(entra: Any, caplog: pytest.LogCaptureFixture) -> None:
    victim = Client()
    used = sign_in(victim, entra, "ann")
    assert used.response.status_code == 302
    code = parse_qs(urlsplit(used.callback).query)["code"][0]
    # An attacker with the code starts a sign-in of their own and pastes the code into its callback.
    attacker = Client()
    state = parse_qs(urlsplit(start(attacker)).query)["state"][0]
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        response = attacker.get("/oidc/callback/", {"code": code, "state": state})
    assert_refused(response, attacker, "already used")
    assert "AADSTS54005" in caplog.text and "(code)" in caplog.text


def test_an_error_from_entra_is_refused_without_echoing_it(entra: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = Client()
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    description = "AADSTS65004: User declined to consent.\r\nInjected: <script>alert(1)</script>"
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        response = client.get("/oidc/callback/", {"error": "access_denied", "error_description": description, "state": state})
    assert_refused(response, client, "did not sign you in")
    assert "<script>alert(1)" not in response.content.decode()
    assert "access_denied" in caplog.text and "\r\nInjected" not in caplog.text  # one log line
    assert state not in client.session.get("oidc_states", {})  # the state is spent


@pytest.mark.parametrize(
    ("how", "text", "logged"),
    [
        ("other_tenant", "another Entra ID tenant", "(tenant)"),
        ("wrong_audience", "could not be verified", "InvalidAudienceError"),
        ("wrong_issuer", "could not be verified", "issuer"),
        ("wrong_nonce", "could not be verified", "nonce"),
        ("expired", "could not be verified", "ExpiredSignatureError"),
        ("unknown_kid", "could not be verified", "Could not find a valid JWKS"),
    ],
)
def test_a_wrong_id_token_is_refused(entra: Any, caplog: pytest.LogCaptureFixture, how: str, text: str, logged: str) -> None:
    entra.faults.id_token(how)
    client = Client()
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        attempt = sign_in(client, entra, "ada")
    assert_refused(attempt.response, client, text)
    assert "Entra ID sign-in refused" in caplog.text and logged in caplog.text
    assert not ExternalIdentity.objects.exists()
    assert sign_in(Client(), entra, "ada").response.status_code == 302  # the next, correct token is accepted


def test_a_rotated_signing_key_is_picked_up_from_the_jwks(entra: Any) -> None:
    assert sign_in(Client(), entra, "vic").response.status_code == 302
    old_kid = jwt.get_unverified_header(_last_id_token(entra))["kid"]
    new_kid = entra.rotate_signing_key()
    client = Client()
    assert sign_in(client, entra, "vic").response.status_code == 302 and signed_in_user(client) is not None
    assert jwt.get_unverified_header(_last_id_token(entra))["kid"] == new_kid != old_kid


def test_an_unreachable_entra_is_a_refusal_not_a_500(entra: Any, settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = Client()
    authorize = start(client)
    callback = pick_account(entra, authorize, "ann")
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://127.0.0.1:9/token"  # nothing listens on the discard port
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        response = client.get(callback)
    assert_refused(response, client, "could not be reached")
    assert "(unavailable)" in caplog.text


def test_a_disabled_local_account_is_refused(entra: Any) -> None:
    first = Client()
    sign_in(first, entra, "ann")
    ann = signed_in_user(first)
    ann.is_active = False
    ann.save()
    client = Client()
    assert_refused(sign_in(client, entra, "ann").response, client, "disabled")


def test_refused_sign_ins_are_not_counted_as_password_guesses(entra: Any, settings: Any) -> None:
    from axes.models import AccessAttempt

    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(3):  # three role-less users behind one address
        client = Client()
        assert sign_in(client, entra, "nor").response.status_code == 403
    assert not AccessAttempt.objects.exists()  # nothing counted, no code stored
    client = Client()
    assert sign_in(client, entra, "ann").response.status_code == 302 and signed_in_user(client) is not None


def _last_id_token(emu: Any) -> str:
    """The id token of the emulator's last answer from its token endpoint (its request log)."""
    answers = [r for r in emu.requests("token") if isinstance(r.get("response"), dict) and "id_token" in r["response"]]
    return str(answers[-1]["response"]["id_token"])
