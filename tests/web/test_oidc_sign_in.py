"""Signing in with Entra ID against the emulator: users are known by tenant and object id, get
the role their app roles or groups map to, and get it again (or lose it) at every sign-in."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from posture.models import ExternalIdentity
from posture.roles import user_role
from tests.web import oidc_flow
from tests.web.oidc_flow import pick_account, sign_in, signed_in_user, start, user

entra_emulator, entra = oidc_flow.entra_emulator, oidc_flow.entra  # fixtures

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("who", "role"), [("ada", "admin"), ("ann", "analyst"), ("vic", "viewer"), ("gus", "analyst")])
def test_app_roles_and_groups_map_to_the_posture_role(entra: Any, who: str, role: str) -> None:
    client = Client()
    attempt = sign_in(client, entra, who)
    assert attempt.response.status_code == 302 and attempt.response["Location"] == reverse("overview")
    signed_in = signed_in_user(client)
    assert user_role(signed_in) == role
    assert client.get(reverse("overview")).status_code == 200


def test_the_authorization_request_carries_state_nonce_and_a_pkce_challenge(entra: Any) -> None:
    query = parse_qs(urlsplit(start(Client())).query)
    assert query["client_id"] == [entra.client_id] and query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert "openid" in query["scope"][0].split()


def test_a_first_sign_in_creates_a_user_known_by_tenant_and_object_id(entra: Any) -> None:
    client = Client()
    sign_in(client, entra, "ann")
    ann = user(entra, "ann")
    identity = ExternalIdentity.objects.get(tenant_id=entra.tenant_id, object_id=ann["oid"])
    assert identity.user == signed_in_user(client) and identity.user.username == ann["upn"]
    assert identity.display_name == "Ann Analyst" and identity.roles_claimed == ["Posture.Analyst"] and identity.last_sign_in
    assert not identity.user.has_usable_password()  # only Entra can sign this user in
    again = Client()
    sign_in(again, entra, "ann")
    assert signed_in_user(again) == identity.user and ExternalIdentity.objects.count() == 1


def test_an_existing_local_user_with_the_same_email_or_name_is_not_taken_over(entra: Any) -> None:
    ada = user(entra, "ada")
    local = get_user_model().objects.create_user(ada["upn"], email=ada["upn"], password="x" * 20)
    client = Client()
    sign_in(client, entra, "ada")
    signed_in = signed_in_user(client)
    assert signed_in != local and signed_in.username.startswith(ada["upn"] + "#")
    assert user_role(local) is None and local.check_password("x" * 20)


def test_a_role_changed_in_entra_applies_at_the_next_sign_in(entra: Any) -> None:
    first = Client()
    sign_in(first, entra, "ada")
    ada = signed_in_user(first)
    assert user_role(ada) == "admin"
    entra.set_user(user(entra, "ada")["oid"], roles=["Posture.Viewer"])
    second = Client()
    sign_in(second, entra, "ada")
    assert signed_in_user(second) == ada and user_role(get_user_model().objects.get(pk=ada.pk)) == "viewer"
    assert second.get(reverse("export-audit")).status_code == 403  # admin pages are gone


def test_a_role_removed_in_entra_refuses_the_next_sign_in_and_revokes_the_role(entra: Any, caplog: pytest.LogCaptureFixture) -> None:
    earlier = Client()
    sign_in(earlier, entra, "vic")
    vic = signed_in_user(earlier)
    entra.set_user(user(entra, "vic")["oid"], roles=[])
    client = Client()
    with caplog.at_level(logging.WARNING, logger="web.oidc"):
        attempt = sign_in(client, entra, "vic")
    assert attempt.response.status_code == 403 and b"no Arc Posture role" in attempt.response.content
    assert signed_in_user(client) is None and "no_role" in caplog.text
    assert user_role(get_user_model().objects.get(pk=vic.pk)) is None
    assert earlier.get(reverse("overview")).status_code == 403  # the session open elsewhere lost the role too


def test_a_user_without_a_mapped_role_is_refused_with_a_clear_page_and_no_session(entra: Any) -> None:
    client = Client()
    attempt = sign_in(client, entra, "nor")
    assert attempt.response.status_code == 403
    page = attempt.response.content.decode()
    assert "Sign-in refused" in page and "Ask an administrator to assign you" in page
    assert signed_in_user(client) is None and not ExternalIdentity.objects.exists()
    assert not get_user_model().objects.exists()


def test_the_role_mapping_comes_from_settings(entra: Any, settings: Any) -> None:
    settings.ARC_OIDC_VIEWER_ROLES = ["Posture.Viewer", "Posture.Admin"]
    settings.ARC_OIDC_ADMIN_ROLES = ["Some.Other.Role"]
    client = Client()
    sign_in(client, entra, "ada")
    assert user_role(signed_in_user(client)) == "viewer"


def test_sign_in_returns_to_the_page_asked_for(entra: Any) -> None:
    client = Client()
    authorize = start(client, next_url="/clusters/")
    response = client.get(pick_account(entra, authorize, "vic"))
    assert response.status_code == 302 and response["Location"] == "/clusters/"


def test_the_login_page_offers_microsoft_sign_in_when_configured(entra: Any) -> None:
    page = Client().get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" in page and reverse("oidc_authentication_init") in page
    assert 'name="password"' in page  # LOCAL_LOGIN defaults to true


def test_without_oidc_settings_the_flow_is_absent_and_the_button_hidden(client: Client) -> None:
    assert "Sign in with Microsoft" not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback"), {"code": "x", "state": "y"}).status_code == 404


def test_an_entra_user_is_offered_no_password_change_and_is_marked_on_the_users_page(entra: Any) -> None:
    client = Client()
    sign_in(client, entra, "ada")
    page = client.get(reverse("overview")).content.decode()
    assert 'title="Signed in with Entra ID"' in page and reverse("password-change") not in page
    local = get_user_model().objects.create_user("local-admin", password="x" * 20)
    users = client.get(reverse("user-list")).content.decode()
    assert users.count(">Entra ID</span>") == 1 and "local-admin" in users
    assert local.has_usable_password()
