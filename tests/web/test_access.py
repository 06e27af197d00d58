"""Every page sits behind a login; roles decide what a signed-in user may do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from posture.models import Scan, Scope

PUBLIC = {"login", "healthz"}
SAMPLE = {"uuid": str(uuid.uuid4()), "slug": "sample", "int": "1", "str": "sample", "path": "sample"}


def concrete_urls() -> Iterator[tuple[str, str]]:
    """(name, path) for every URL pattern, with sample values for its parameters."""

    def walk(patterns: list, prefix: str) -> Iterator[tuple[str, str]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                for name, converter in pattern.pattern.converters.items():
                    kind = type(converter).__name__.replace("Converter", "").lower()
                    route = route.replace(f"<{kind}:{name}>", SAMPLE.get(kind, "sample")).replace(f"<{name}>", "sample")
                yield pattern.name or route, "/" + route

    yield from walk(get_resolver().url_patterns, "")


def test_url_enumeration_finds_every_page() -> None:
    names = {name for name, _ in concrete_urls()}
    assert {"login", "healthz", "overview", "scan-list", "scan-start"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("name,path", list(concrete_urls()))
def test_anonymous_requests_are_sent_to_login(client, name: str, path: str) -> None:
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        if name in PUBLIC:
            assert response.status_code != 302 or not response["Location"].startswith(reverse("login"))
        else:
            assert response.status_code == 302, (method, path, response.status_code)
            assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
def test_viewer_may_not_start_a_scan(viewer_client) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    response = viewer_client.post(reverse("scan-start", args=[scope.name]))
    assert response.status_code == 403
    assert not Scan.objects.exists()


@pytest.mark.django_db
def test_analyst_starts_one_scan_and_a_second_request_shows_the_running_one(analyst_client, django_capture_on_commit_callbacks) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = analyst_client.post(reverse("scan-start", args=[scope.name]))
        second = analyst_client.post(reverse("scan-start", args=[scope.name]))
    scan = Scan.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("scan-detail", args=[scan.pk])
    assert scan.state == Scan.State.PENDING and scan.trigger == Scan.Trigger.MANUAL
    assert len(callbacks) == 1  # one task enqueued, after commit


@pytest.mark.django_db
def test_viewer_can_read_pages(viewer_client) -> None:
    assert viewer_client.get(reverse("overview")).status_code == 200
    assert viewer_client.get(reverse("scan-list")).status_code == 200


@pytest.mark.django_db
def test_user_without_role_is_refused(client, django_user_model) -> None:
    user = django_user_model.objects.create_user("nobody", password="x" * 20)
    client.force_login(user)
    assert client.get(reverse("overview")).status_code == 403
