"""Signing in, and throttling of password guessing (django-axes, web/throttle.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.urls import reverse

from web.throttle import client_address

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]
LOCKED = "Too many failed sign-ins"


def sign_in(client, username: str, password: str, **meta: str):
    return client.post(reverse("login"), {"username": username, "password": password}, **meta)


def via_proxy(client_ip: str) -> dict[str, str]:
    """A request as the TLS proxy on the default trusted address forwards it."""
    return {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": client_ip}


@pytest.mark.django_db
def test_it_signs_in_and_lands_on_the_overview(client, viewer) -> None:
    response = sign_in(client, viewer.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("overview")


@pytest.mark.django_db
def test_it_locks_a_user_name_after_repeated_failures(client, viewer, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert sign_in(client, viewer.username, "wrong password").status_code == 200
    third = sign_in(client, viewer.username, "wrong password")
    assert third.status_code == 429 and LOCKED in third.content.decode()
    locked = sign_in(client, viewer.username, PASSWORD)  # even the right password is refused now
    assert locked.status_code == 429
    assert LOCKED in locked.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_successful_sign_in_resets_the_failure_count(client, viewer, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    sign_in(client, viewer.username, "wrong password")
    sign_in(client, viewer.username, "wrong password")
    assert sign_in(client, viewer.username, PASSWORD).status_code == 302
    client.logout()
    sign_in(client, viewer.username, "wrong password")
    sign_in(client, viewer.username, "wrong password")
    assert sign_in(client, viewer.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_guessing_at_many_names_behind_the_proxy_locks_out_nobody_else(client, viewer, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(25):  # more than any per-address limit
        sign_in(client, f"guess-{n}", "wrong password", **via_proxy("203.0.113.9"))
    # Every user reaches the app from the proxy's address; another client is not locked out ...
    assert sign_in(client, viewer.username, PASSWORD, **via_proxy("198.51.100.7")).status_code == 302
    client.logout()
    # ... and neither is the victim's user name locked by the guesser's failures on it.
    for _ in range(3):
        sign_in(client, viewer.username, "wrong password", **via_proxy("203.0.113.9"))
    assert sign_in(client, viewer.username, PASSWORD, **via_proxy("203.0.113.9")).status_code == 429
    assert sign_in(client, viewer.username, PASSWORD, **via_proxy("198.51.100.7")).status_code == 302


@pytest.mark.django_db
def test_a_direct_client_cannot_escape_the_lock_by_claiming_other_addresses(client, viewer, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for n in range(3):
        sign_in(client, viewer.username, "wrong password", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    response = sign_in(client, viewer.username, PASSWORD, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert response.status_code == 429


def test_the_client_address_is_read_from_x_forwarded_for_only_when_a_trusted_proxy_sent_it(settings) -> None:
    factory = RequestFactory()
    settings.ARC_TRUSTED_PROXIES = ["10.0.0.2"]
    settings.AXES_IPWARE_PROXY_COUNT = 0
    assert client_address(factory.get("/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.7")) == "203.0.113.9"
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")) == "198.51.100.7"
    # A client's own X-Forwarded-For entries come before the one the proxy appended.
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.7")) == "198.51.100.7"
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"  # the proxy's own health check
    # Two proxies (ARC_PROXY_COUNT=2): the second appended the first's address after the client's.
    settings.AXES_IPWARE_PROXY_COUNT = 1
    forwarded = "192.0.2.1, 198.51.100.7, 10.0.0.1"
    assert client_address(factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)) == "198.51.100.7"


@pytest.mark.slow
def test_lockouts_are_shared_by_every_process_of_the_embedded_default(tmp_path) -> None:
    """The embedded demo serves with two gunicorn workers on SQLite: a lock-out recorded by one
    process holds in another."""
    env = {"ARC_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "web.settings.base", "LOGIN_FAILURE_LIMIT": "2"}
    fail_twice = textwrap.dedent(
        """
        from django.core.management import call_command
        from django.test import Client
        call_command("migrate", verbosity=0)
        from django.contrib.auth import get_user_model
        get_user_model().objects.create_user("vera", password="correct horse battery staple")
        client = Client()
        for _ in range(2):
            client.post("/login/", {"username": "vera", "password": "wrong"}, REMOTE_ADDR="203.0.113.9", SERVER_NAME="localhost")
        """
    )
    try_again = textwrap.dedent(
        """
        from django.test import Client
        client = Client()
        print(client.post("/login/", {"username": "vera", "password": "correct horse battery staple"}, REMOTE_ADDR="203.0.113.9", SERVER_NAME="localhost").status_code)
        """
    )
    for code in (fail_twice, try_again):
        result = run_shell(code, env)
        assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "429"


def run_shell(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "DJANGO_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **env},
    )


@pytest.mark.django_db
def test_sign_out_needs_a_post(client, viewer) -> None:
    client.force_login(viewer)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session
