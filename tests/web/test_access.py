"""Every URL pattern × anonymous, viewer, analyst and admin × GET and POST gives the expected answer.

A new URL pattern without an entry in EXPECTED fails `test_every_url_pattern_has_an_expected_answer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from posture.models import AlertRule, Scan, Scope
from tests.conftest import logged_in

ROLES = ("anonymous", "viewer", "analyst", "admin")
LOGIN = "login"  # a redirect to the sign-in page

# (GET answers, POST answers) for (anonymous, viewer, analyst, admin).
READ = ((LOGIN, 200, 200, 200), (LOGIN, 405, 405, 405))
EXPORT = ((LOGIN, 403, 200, 200), (LOGIN, 405, 405, 405))
ADMIN_READ = ((LOGIN, 403, 403, 200), (LOGIN, 405, 405, 405))
ANALYST_FORM = ((LOGIN, 403, 200, 200), (LOGIN, 403, 200, 200))  # an empty POST re-renders with errors
ADMIN_FORM = ((LOGIN, 403, 403, 200), (LOGIN, 403, 403, 200))
ANALYST_ACTION = ((LOGIN, 405, 405, 405), (LOGIN, 403, 302, 302))
ADMIN_ACTION = ((LOGIN, 405, 405, 405), (LOGIN, 403, 403, 302))
JSON_READ = ((401, 200, 200, 200), (401, 405, 405, 405))  # a JSON client is told, not sent to the sign-in page

EXPECTED: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    "healthz": ((200, 200, 200, 200), (405, 405, 405, 405)),
    # A bearer token (ARC_METRICS_TOKEN), not a session: every role is a client without it.
    "metrics": ((401, 401, 401, 401), (405, 405, 405, 405)),
    "login": ((200, 302, 302, 302), (200, 302, 302, 302)),
    "logout": ((LOGIN, 405, 405, 405), (LOGIN, 302, 302, 302)),
    "password-change": ((LOGIN, 200, 200, 200), (LOGIN, 200, 200, 200)),
    # Entra ID sign-in is not configured in the test settings: both halves of the flow are absent.
    "oidc_authentication_init": ((404, 404, 404, 404), (405, 405, 405, 405)),
    "oidc_authentication_callback": ((404, 404, 404, 404), (405, 405, 405, 405)),
    "overview": READ,
    "cluster-list": READ,
    "cluster-detail": READ,
    "benchmark-list": READ,
    "benchmark-detail": READ,
    "benchmark-section": READ,
    "control-list": READ,
    "control-detail": READ,
    "control-remediation": EXPORT,
    "scan-list": READ,
    "scan-detail": READ,
    "scan-progress": JSON_READ,
    "evidence-download": EXPORT,
    "evidence-public-key": READ,
    # GET lists the user's exports; an empty POST (no kind) is sent back with a message.
    "export-list": ((LOGIN, 403, 200, 200), (LOGIN, 403, 302, 302)),
    "export-audit": ADMIN_READ,
    # The sample export is the analyst's: another analyst would get a 404.
    "export-progress": ((401, 403, 200, 200), (401, 405, 405, 405)),
    "export-download": EXPORT,
    "alert-rule-list": READ,
    "alert-rule-create": ANALYST_FORM,
    "alert-rule-detail": READ,
    "alert-rule-edit": ANALYST_FORM,
    "alert-rule-enabled": ANALYST_ACTION,
    # The analyst deletes the sample rule; the admin then finds none.
    "alert-rule-delete": ((LOGIN, 405, 405, 405), (LOGIN, 403, 302, 404)),
    # Everyone subscribes themselves; an empty POST is sent back with a message.
    "alert-rule-subscription": ((LOGIN, 405, 405, 405), (LOGIN, 302, 302, 302)),
    "alert-rule-preview": EXPORT,
    # Everyone sees their own history; the sample message is the viewer's, so the analyst gets a 404.
    "notification-list": READ,
    "notification-detail": ((LOGIN, 200, 404, 200), (LOGIN, 405, 405, 405)),
    "notification-resend": ADMIN_ACTION,
    # No sign-in: the signed token is the authority. GET confirms; a POST without the RFC 8058 body is refused.
    "unsubscribe": ((200, 200, 200, 200), (400, 400, 400, 400)),
    "scope-list": READ,
    "scope-create": ADMIN_FORM,
    "scope-edit": ADMIN_FORM,
    "scan-start": ANALYST_ACTION,
    "attestation-list": READ,
    "attestation-create": ANALYST_FORM,
    "attestation-detail": READ,
    "attestation-revoke": ANALYST_ACTION,
    "exception-list": READ,
    "exception-create": ANALYST_FORM,
    "exception-detail": READ,
    "exception-approve": ADMIN_ACTION,
    "exception-reject": ADMIN_ACTION,
    # Someone else's request: only an admin may revoke it (a requester may withdraw their own).
    "exception-revoke": ADMIN_ACTION,
    "user-list": ADMIN_READ,
    "user-create": ADMIN_FORM,
    "user-role": ADMIN_ACTION,
    "user-set-active": ADMIN_ACTION,
    # Everyone manages their own API tokens; an empty POST re-renders the form with errors.
    "token-list": READ,
    "token-create": ((LOGIN, 200, 200, 200), (LOGIN, 200, 200, 200)),
    # The sample token is the viewer's: the analyst cannot see it; the admin revokes anyone's.
    "token-revoke": ((LOGIN, 405, 405, 405), (LOGIN, 302, 404, 302)),
}


def url_patterns() -> Iterator[tuple[str, str]]:
    """(name, route) of every URL pattern but the API's (tests/web/test_api_access.py has their table)."""

    def walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver) and pattern.namespace == "api":
                continue
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield pattern.name or "", prefix + str(pattern.pattern)

    yield from walk(get_resolver().url_patterns, "")


def test_every_url_pattern_has_an_expected_answer() -> None:
    patterns = dict(url_patterns())
    assert "" not in patterns, "every URL pattern needs a name"
    assert set(patterns) == set(EXPECTED), "add the new pattern to EXPECTED (and protect its view)"


def clients(viewer: Any, analyst: Any, admin_user: Any) -> dict[str, Client]:
    return {"anonymous": Client(), "viewer": logged_in(viewer), "analyst": logged_in(analyst), "admin": logged_in(admin_user)}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_role_gets_the_expected_answer(
    name: str, sample: dict[str, dict[str, Any]], viewer: Any, analyst: Any, admin_user: Any
) -> None:
    url = reverse(name, kwargs=sample.get(name, {}))
    by_role = clients(viewer, analyst, admin_user)
    answers = {}
    for method, expected in zip(("get", "post"), EXPECTED[name], strict=True):
        for role, want in zip(ROLES, expected, strict=True):
            response = getattr(by_role[role], method)(url)
            got: Any = response.status_code
            if got == 302 and response["Location"].startswith(reverse("login") + "?next="):
                got = LOGIN
            answers[(method, role)] = (got, want)
    wrong = {k: v for k, v in answers.items() if v[0] != v[1]}
    assert not wrong, f"{name} {url}: (got, expected) {wrong}"


@pytest.mark.django_db
def test_a_user_without_a_role_is_refused_everywhere(client: Client, django_user_model: Any, make_fleet: Any) -> None:
    make_fleet(1)
    client.force_login(django_user_model.objects.create_user("nobody", password="x" * 20))
    for name in ("overview", "cluster-list", "benchmark-list", "control-list", "scan-list", "scope-list", "exception-list"):
        assert client.get(reverse(name)).status_code == 403, name


@pytest.mark.django_db
def test_forms_refuse_a_post_without_csrf_token(viewer: Any, admin_user: Any, make_fleet: Any) -> None:
    fleet = make_fleet(1)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    for url in (
        reverse("scan-start", args=[fleet.scope.name]),
        reverse("scope-create"),
        reverse("user-create"),
        reverse("exception-create"),
        reverse("alert-rule-create"),
    ):
        response = strict.post(url)
        assert response.status_code == 403 and b"Form expired" in response.content, url
    assert not Scan.objects.exclude(pk=fleet.scan.pk).exists() and Scope.objects.count() == 1 and not AlertRule.objects.exists()
