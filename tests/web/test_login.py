"""Signing in, and throttling of password guessing."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def sign_in(client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.mark.django_db
def test_it_signs_in_and_lands_on_the_overview(client, viewer) -> None:
    response = sign_in(client, viewer.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("overview")


@pytest.mark.django_db
def test_it_locks_a_user_name_after_repeated_failures(client, viewer, settings) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert sign_in(client, viewer.username, "wrong password").status_code == 200
    locked = sign_in(client, viewer.username, PASSWORD)  # even the right password is refused now
    assert locked.status_code == 200
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_failure_count(client, viewer, settings) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    sign_in(client, viewer.username, "wrong password")
    sign_in(client, viewer.username, "wrong password")
    assert sign_in(client, viewer.username, PASSWORD).status_code == 302
    client.logout()
    sign_in(client, viewer.username, "wrong password")
    sign_in(client, viewer.username, "wrong password")
    assert sign_in(client, viewer.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_guessing_across_many_names_locks_the_address(client, viewer, settings) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2  # the address limit is 4x: 8 failures
    for n in range(8):
        sign_in(client, f"guess-{n}", "wrong password")
    assert "Too many failed sign-ins" in sign_in(client, viewer.username, PASSWORD).content.decode()


@pytest.mark.django_db
def test_sign_out_needs_a_post(client, viewer) -> None:
    client.force_login(viewer)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session
