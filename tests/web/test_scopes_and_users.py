"""Scopes (admin) through scope_save, and users with roles and one-time passwords."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from posture.models import Scope
from posture.roles import user_role
from tests.conftest import make_user

SUB = "11111111-1111-1111-1111-111111111111"


def scope_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "corp",
        "tenant_id": "contoso.onmicrosoft.com",
        "cloud": "AzureCloud",
        "subscriptions": f"{SUB.upper()}\n\n22222222-2222-2222-2222-222222222222",
        "management_groups": "",
        "schedule": "0 */6 * * *",
        "enabled": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_an_admin_adds_a_scope_and_its_schedule_follows(admin_client: Any, django_capture_on_commit_callbacks: Any) -> None:
    from django_celery_beat.models import PeriodicTask

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("scope-create"), scope_data(), follow=True)
    scope = Scope.objects.get()
    assert scope.subscriptions == [SUB, "22222222-2222-2222-2222-222222222222"]
    assert "Scope corp added" in response.content.decode()
    assert PeriodicTask.objects.filter(name="arc-posture: scan scope corp", enabled=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"tenant_id": "not a tenant!"}, "Enter the tenant GUID or its domain name."),
        ({"cloud": "Custom"}, "Select a valid choice. Custom is not one of the available choices."),
        ({"credential": "corp"}, "Select a valid choice. corp is not one of the available choices."),
        ({"subscriptions": "abc"}, "is not a GUID"),
        ({"management_groups": "mg-1"}, "Give subscriptions or management groups, not both."),
        ({"schedule": "every hour"}, "is not a cron schedule beat can run: it needs five fields"),
        ({"schedule": "*/0 * * * *"}, "is not a cron schedule beat can run: minute &#x27;*/0&#x27;: slice step cannot be zero"),
        ({"name": "Has Spaces"}, "Enter a valid “slug”"),
    ],
)
def test_invalid_scopes_are_explained(admin_client: Any, overrides: dict[str, Any], message: str) -> None:
    response = admin_client.post(reverse("scope-create"), scope_data(**overrides))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Scope.objects.exists()


@pytest.mark.django_db
def test_an_admin_edits_a_scope(admin_client: Any) -> None:
    Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com", subscriptions=[SUB])
    form = admin_client.get(reverse("scope-edit", args=["corp"])).content.decode()
    assert SUB in form and "AZURE_CORP_CLIENT_ID" in form and "Reader" in form
    admin_client.post(reverse("scope-edit", args=["corp"]), scope_data(subscriptions="", management_groups="mg-prod", enabled=""))
    scope = Scope.objects.get()
    assert (scope.subscriptions, scope.management_groups, scope.enabled) == ([], ["mg-prod"], False)


@pytest.mark.django_db
def test_the_scope_list_shows_scopes_to_viewers_without_edit_links(viewer_client: Any) -> None:
    Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com", subscriptions=[SUB])
    html = viewer_client.get(reverse("scope-list")).content.decode()
    assert "corp" in html and "1 subscription(s)" in html
    assert reverse("scope-edit", args=["corp"]) not in html and "Scan now" not in html


@pytest.mark.django_db
def test_a_new_user_gets_a_role_and_a_one_time_password_shown_once(admin_client: Any) -> None:
    response = admin_client.post(reverse("user-create"), {"username": "ursula", "email": "u@example.com", "role": "analyst"})
    html = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = html.split('data-testid="one-time-password">')[1].split("</code>")[0]
    user = get_user_model().objects.get(username="ursula")
    assert user_role(user) == "analyst" and len(password) >= 20 and password not in user.password
    fresh = Client()
    assert fresh.post(reverse("login"), {"username": "ursula", "password": password}).status_code == 302
    assert password not in admin_client.get(reverse("user-list")).content.decode()
    duplicate = admin_client.post(reverse("user-create"), {"username": "URSULA", "role": "viewer"}).content.decode()
    assert "A user with this name already exists." in duplicate


@pytest.mark.django_db
def test_an_admin_changes_roles_and_deactivates_but_not_themselves(admin_user: Any, admin_client: Any) -> None:
    other = make_user("otto", "viewer")
    admin_client.post(reverse("user-role", args=[other.pk]), {"role": "admin"})
    assert user_role(other) == "admin"
    admin_client.post(reverse("user-set-active", args=[other.pk]), {"active": "0"})
    other.refresh_from_db()
    assert not other.is_active
    own = admin_client.post(reverse("user-role", args=[admin_user.pk]), {"role": "viewer"}, follow=True).content.decode()
    assert "You cannot change your own role" in own and user_role(admin_user) == "admin"
    admin_client.post(reverse("user-set-active", args=[admin_user.pk]), {"active": "0"})
    admin_user.refresh_from_db()
    assert admin_user.is_active
    html = admin_client.get(reverse("user-list")).content.decode()
    assert "Deactivated" in html and "Reactivate" in html


@pytest.mark.django_db
def test_users_change_their_own_password(viewer: Any, viewer_client: Any) -> None:
    data = {
        "old_password": "correct horse battery staple",
        "new_password1": "a much longer passphrase 42",
        "new_password2": "a much longer passphrase 42",
    }
    response = viewer_client.post(reverse("password-change"), data, follow=True)
    assert "Your password was changed." in response.content.decode()
    viewer.refresh_from_db()
    assert viewer.check_password("a much longer passphrase 42")
    short = viewer_client.post(reverse("password-change"), {"old_password": "x", "new_password1": "short", "new_password2": "short"})
    assert "Your old password was entered incorrectly" in short.content.decode()
