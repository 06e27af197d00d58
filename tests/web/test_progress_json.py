"""The live progress endpoint is JSON, errors included: a script polling it gets a JSON answer it
can read for a missing scan, a malformed id, a refusal or an expired session, never an HTML page
or a redirect to the sign-in page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posture.models import Scan, Scope
from tests.conftest import logged_in

MISSING = "00000000-0000-0000-0000-000000000000"


def progress_url(scan_id: str) -> str:
    return reverse("scan-progress", args=[scan_id])


def assert_json_error(response: Any, status: int) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert "Location" not in response and "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("scan_id", [MISSING, "not-a-scan", "1234", "00000000-0000-0000-0000-00000000000Z"])
def test_an_unknown_or_malformed_scan_id_answers_a_json_404(viewer_client: Client, scan_id: str) -> None:
    assert_json_error(viewer_client.get(progress_url(scan_id)), 404)


@pytest.mark.django_db
def test_a_client_not_signed_in_gets_a_json_401_not_a_redirect_to_the_sign_in_page() -> None:
    scan = Scan.objects.create(scope=Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com"))
    assert_json_error(Client().get(progress_url(str(scan.pk)), HTTP_ACCEPT="application/json"), 401)
    assert_json_error(Client().get(progress_url(MISSING)), 401)  # nothing is told about scans first


@pytest.mark.django_db
def test_a_user_without_a_role_gets_a_json_403(django_user_model: Any) -> None:
    nobody = logged_in(django_user_model.objects.create_user("nobody", password="x" * 20))
    assert_json_error(nobody.get(progress_url(MISSING)), 403)


@pytest.mark.django_db
def test_a_post_gets_a_json_405_that_names_the_allowed_methods(viewer_client: Client) -> None:
    response = viewer_client.post(progress_url(MISSING))
    assert_json_error(response, 405)
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_a_known_scan_still_answers_its_progress(viewer_client: Client) -> None:
    scan = Scan.objects.create(
        scope=Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com"), batches_total=4, batches_done=1
    )
    response = viewer_client.get(progress_url(str(scan.pk)))
    assert response.status_code == 200 and response.json()["batches_finished"] == 1


@pytest.mark.django_db
def test_a_failure_inside_the_endpoint_answers_a_json_500_and_is_logged(
    viewer_client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scan = Scan.objects.create(scope=Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com"))

    def broken(scan_id: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr("web.views.scans.scan_progress", broken)
    response = viewer_client.get(progress_url(str(scan.pk)))
    assert_json_error(response, 500)
    assert "database gone" not in response.content.decode()
    assert any(record.exc_info and "database gone" in str(record.exc_info[1]) for record in caplog.records)
