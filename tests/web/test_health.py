from __future__ import annotations

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_without_login(client, settings) -> None:
    settings.CELERY_BROKER_URL = ""
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "in-process"}


@pytest.mark.django_db
def test_healthz_is_unhealthy_when_the_broker_is_unreachable(client, settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["broker"] == "unreachable"
    assert "127.0.0.1" not in response.content.decode()  # no connection details leak


@pytest.mark.django_db
def test_healthz_reaches_the_real_broker(client, settings, redis_url) -> None:
    settings.CELERY_BROKER_URL = redis_url
    assert client.get(reverse("healthz")).json()["broker"] == "ok"
