from __future__ import annotations

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(client) -> None:
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_login_form_is_csrf_protected(viewer) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": viewer.username, "password": "x"})
    assert response.status_code == 403


@pytest.mark.django_db
def test_templates_contain_no_inline_script_or_style(client, viewer) -> None:
    client.force_login(viewer)
    for name in ("overview", "scan-list"):
        html = client.get(reverse(name)).content.decode()
        assert "<script>" not in html and " style=" not in html and "onclick=" not in html
