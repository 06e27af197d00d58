"""API tokens in the UI and the CLI: shown once, listed without their secret, bounded lifetime,
revocable by their owner or an admin, and working against the API until revoked."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from posture import tokens
from posture.models import ApiToken
from tests.conftest import logged_in


def api_status(raw: str) -> int:
    return Client().get(reverse("api:fleet"), HTTP_AUTHORIZATION=f"Bearer {raw}").status_code


@pytest.mark.django_db
def test_a_created_token_is_shown_once_and_works(viewer_client: Client, viewer: Any, fleet: Any) -> None:
    response = viewer_client.post(reverse("token-create"), {"name": "SIEM <pull>", "days": "30", "scopes": ["read"]})
    assert response.status_code == 200
    raw = response.context["raw"]
    assert raw.startswith("arcp_") and raw in response.content.decode()
    assert "SIEM &lt;pull&gt;" in response.content.decode()
    token = ApiToken.objects.get(user=viewer)
    assert token.scopes == ["read"] and raw not in token.digest
    listing = viewer_client.get(reverse("token-list")).content.decode()
    assert token.prefix in listing and raw not in listing and raw.rsplit("_", 1)[1] not in listing
    assert api_status(raw) == 200


@pytest.mark.django_db
def test_a_lifetime_past_the_maximum_is_refused(viewer_client: Client, settings: Any) -> None:
    settings.ARC_API_TOKEN_MAX_DAYS = 10
    response = viewer_client.post(reverse("token-create"), {"name": "long", "days": "11"})
    assert response.status_code == 200 and "raw" not in response.context and not ApiToken.objects.exists()
    assert "less than or equal to 10" in response.content.decode()


@pytest.mark.django_db
def test_owners_and_admins_revoke_and_others_cannot(viewer: Any, analyst: Any, admin_user: Any, fleet: Any) -> None:
    token, raw = tokens.issue(viewer, "mine")
    other_token, other_raw = tokens.issue(viewer, "second")
    assert logged_in(analyst).post(reverse("token-revoke", args=[token.pk])).status_code == 404
    assert "mine" not in logged_in(analyst).get(reverse("token-list")).content.decode()
    assert api_status(raw) == 200
    assert logged_in(viewer).post(reverse("token-revoke", args=[token.pk])).status_code == 302
    assert api_status(raw) == 401
    admin = logged_in(admin_user)
    assert "second" in admin.get(reverse("token-list")).content.decode()
    assert admin.post(reverse("token-revoke", args=[other_token.pk])).status_code == 302
    assert api_status(other_raw) == 401


@pytest.mark.django_db
def test_the_command_creates_lists_and_revokes(analyst: Any, fleet: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "api_token", "create", "--user", analyst.username, "--name", "cli", "--days", "7", "--scope", "read", stdout=out, stderr=err
    )
    raw = out.getvalue().strip()
    assert raw.startswith("arcp_") and raw not in err.getvalue() and api_status(raw) == 200
    prefix = raw.split("_")[1]
    listing = io.StringIO()
    call_command("api_token", "list", stdout=listing)
    assert prefix in listing.getvalue() and "scopes=read" in listing.getvalue() and raw not in listing.getvalue()
    call_command("api_token", "revoke", prefix, stdout=io.StringIO())
    assert api_status(raw) == 401
    with pytest.raises(CommandError, match="between 1 and"):
        call_command("api_token", "create", "--user", analyst.username, "--name", "x", "--days", "9999")
    with pytest.raises(CommandError, match="No user"):
        call_command("api_token", "create", "--user", "ghost", "--name", "x")
