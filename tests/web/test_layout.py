"""Navigation, titles, error pages and accessibility basics shared by every page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from tests.web.test_access import EXPECTED, READ

TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)


@pytest.mark.django_db
def test_every_page_has_its_own_title_and_one_h1(sample: dict[str, Any], admin_client: Any) -> None:
    titles = {}
    for name, expected in EXPECTED.items():
        if expected != READ or name in ("scan-progress", "evidence-public-key"):  # JSON, PEM: no pages
            continue
        html = admin_client.get(reverse(name, kwargs=sample.get(name, {}))).content.decode()
        titles[name] = TITLE_RE.search(html).group(1).strip()
        assert html.count("<h1") == 1, name
        assert titles[name].endswith("· Arc Posture"), name
    assert len(set(titles.values())) == len(titles), titles


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name,current",
    [
        ("overview", "Overview"),
        ("cluster-list", "Clusters"),
        ("control-list", "Controls"),
        ("exception-list", "Exceptions"),
        ("alert-rule-list", "Alerts"),
        ("notification-list", "Alerts"),
    ],
)
def test_the_nav_marks_the_current_area(admin_client: Any, name: str, current: str) -> None:
    html = admin_client.get(reverse(name)).content.decode()
    marked = re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', html)
    assert marked == [current]


@pytest.mark.django_db
def test_users_link_only_for_those_who_manage_users(viewer_client: Any, admin_client: Any) -> None:
    assert reverse("user-list") not in viewer_client.get(reverse("overview")).content.decode()
    assert reverse("user-list") in admin_client.get(reverse("overview")).content.decode()


@pytest.mark.django_db
def test_error_pages_keep_the_layout(viewer_client: Any) -> None:
    missing = viewer_client.get("/no/such/page/")
    assert missing.status_code == 404 and b"Not found" in missing.content and b'aria-label="Main"' in missing.content
    refused = viewer_client.get(reverse("user-list"))
    assert refused.status_code == 403 and b"Your role does not include this action" in refused.content


def test_the_server_error_page_renders_without_a_request() -> None:
    html = render_to_string("500.html")
    assert "Something went wrong" in html and "css/app.css" in html and "<script" not in html


@pytest.mark.django_db
def test_every_form_input_has_a_label(sample: dict[str, Any], admin_client: Any) -> None:
    pages = [
        "cluster-list",
        "scan-list",
        "attestation-create",
        "exception-create",
        "scope-create",
        "user-create",
        "user-list",
        "exception-list",
    ]
    for name in pages:
        html = admin_client.get(reverse(name, kwargs=sample.get(name, {}))).content.decode()
        labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag or 'type="radio"' in tag:
                continue  # radios sit inside their own label
            field_id = re.search(r'id="([^"]+)"', tag)
            assert field_id and field_id.group(1) in labelled, (name, tag)
