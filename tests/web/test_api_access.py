"""Every API endpoint × every kind of caller gives the expected status, like test_access.py does
for the pages. A new API URL pattern without a row fails `test_every_api_pattern_has_a_row`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from posture import tokens
from posture.models import ApiToken, Export
from posture.roles import ANALYST
from tests.conftest import logged_in, make_user

CALLERS = ("anonymous", "expired", "revoked", "viewer", "analyst", "admin", "read_only", "viewer_session")
LOGIN = "login"  # a redirect to the sign-in page

READ = (401, 401, 401, 200, 200, 200, 200, 200)
EXPORTS = (401, 401, 401, 403, 200, 200, 403, 403)

# GET answers per caller (and for exports, the answers to an empty POST).
EXPECTED: dict[str, tuple[Any, ...]] = {
    "schema": READ,
    # A page for people: it needs the session (a token is no sign-in), and "Try it out" uses it.
    "docs": (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, 200),
    "fleet": READ,
    "fleet-trend": READ,
    "scope-list": READ,
    "scan-list": READ,
    "scan-detail": READ,
    "cluster-list": READ,
    "cluster-detail": READ,
    "control-list": READ,
    "control-detail": READ,
    "framework-list": READ,
    "framework-detail": READ,
    "attestation-list": READ,
    "attestation-detail": READ,
    "exception-list": READ,
    "exception-detail": READ,
    "changes": READ,
    "export-list": EXPORTS,
    # The sample export is the analyst's; the admin sees every export.
    "export-detail": EXPORTS,
    "export-download": EXPORTS,
    "not-found": (401, 401, 401, 404, 404, 404, 404, 404),
}
# An empty POST: refused for want of a kind by those who may export, before that by the others.
POST_EXPECTED = {"export-list": (401, 401, 401, 403, 400, 400, 403, 403)}


def api_patterns() -> list[str]:
    def walk(patterns: list[Any]) -> list[str]:
        names = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver) and pattern.namespace == "api":
                names += [p.name for p in pattern.url_patterns if isinstance(p, URLPattern)]
            elif isinstance(pattern, URLResolver):
                names += walk(pattern.url_patterns)
        return names

    return walk(get_resolver().url_patterns)


def test_every_api_pattern_has_a_row() -> None:
    names = api_patterns()
    assert "" not in names and None not in names, "every API URL pattern needs a name"
    assert set(names) == set(EXPECTED), "add the new API pattern to EXPECTED (and protect its view)"


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def callers(viewer: Any, analyst: Any, admin_user: Any) -> dict[str, tuple[Client, dict[str, str]]]:
    """Each caller: a client and the headers it sends."""
    expired_token, expired = tokens.issue(analyst, "expired", days=1)
    ApiToken.objects.filter(pk=expired_token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    revoked_token, revoked = tokens.issue(admin_user, "revoked")
    tokens.revoke(revoked_token)
    return {
        "anonymous": (Client(), {}),
        "expired": (Client(), bearer(expired)),
        "revoked": (Client(), bearer(revoked)),
        "viewer": (Client(), bearer(tokens.issue(viewer, "siem")[1])),
        "analyst": (Client(), bearer(tokens.issue(analyst, "siem")[1])),
        "admin": (Client(), bearer(tokens.issue(admin_user, "siem")[1])),
        "read_only": (Client(), bearer(tokens.issue(analyst, "read only", scopes=[tokens.READ])[1])),
        "viewer_session": (logged_in(viewer), {}),
    }


def api_kwargs(sample: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    export = sample["export-download"]
    return {
        "scan-detail": sample["scan-detail"],
        "cluster-detail": sample["cluster-detail"],
        "control-detail": sample["control-detail"],
        "framework-detail": {"framework": "cis-k8s"},
        "attestation-detail": sample["attestation-detail"],
        "exception-detail": sample["exception-detail"],
        "export-detail": export,
        "export-download": export,
        "not-found": {"rest": "no/such/thing"},
    }


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_caller_gets_the_expected_answer(name: str, sample: dict[str, dict[str, Any]], callers: dict[str, Any]) -> None:
    url = reverse(f"api:{name}", kwargs=api_kwargs(sample).get(name, {}))
    answers = {}
    for method, table in (("get", EXPECTED), ("post", POST_EXPECTED)):
        if name not in table:
            continue
        for caller, want in zip(CALLERS, table[name], strict=True):
            client, headers = callers[caller]
            response = getattr(client, method)(url, data={} if method == "post" else None, content_type="application/json", **headers)
            got: Any = response.status_code
            if got == 302 and response["Location"].startswith(reverse("login") + "?next="):
                got = LOGIN
            answers[(method, caller)] = (got, want)
            if got in (400, 401, 403, 404):
                assert response["Content-Type"] == "application/problem+json", (name, caller)
            if got == 401:
                assert response["WWW-Authenticate"].startswith("Bearer"), (name, caller)
    wrong = {k: v for k, v in answers.items() if v[0] != v[1]}
    assert not wrong, f"{name} {url}: (got, expected) {wrong}"


@pytest.mark.django_db
def test_a_user_without_a_role_gets_403_with_a_valid_token(make_fleet: Any, django_user_model: Any) -> None:
    make_fleet(1)
    nobody = django_user_model.objects.create_user("nobody", password="x" * 20)
    _, raw = tokens.issue(nobody, "no role")
    response = Client().get(reverse("api:fleet"), **bearer(raw))
    assert response.status_code == 403 and response.json()["status"] == 403


@pytest.mark.django_db
def test_a_token_of_a_deactivated_user_is_refused(make_fleet: Any) -> None:
    user = make_user("leaver", ANALYST)
    _, raw = tokens.issue(user, "siem")
    assert Client().get(reverse("api:fleet"), **bearer(raw)).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert Client().get(reverse("api:fleet"), **bearer(raw)).status_code == 401


@pytest.mark.django_db
def test_a_session_post_without_csrf_token_is_refused(analyst: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(analyst)
    response = strict.post(reverse("api:export-list"), data={"kind": "scorecards", "format": "csv"}, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Export.objects.exists()
