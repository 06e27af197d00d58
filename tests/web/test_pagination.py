"""A page number that does not exist shows the nearest page with a notice, on every paginated
list, the way ignored filters are reported: the first page below 1 or for no number, the last
past the end."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.paginator import Page
from django.test import Client
from django.urls import reverse

from tests.web.test_access import EXPECTED

# The lists that paginate (found below by their `page` context, so a new one is not missed).
PAGINATED = {
    "cluster-list",
    "control-detail",
    "benchmark-section",
    "scan-list",
    "attestation-list",
    "exception-list",
    "user-list",
    "export-list",
    "export-audit",
    "notification-list",
    "notification-detail",
    "alert-rule-list",
    "token-list",
}


def page_urls(sample: dict[str, Any]) -> dict[str, str]:
    """Every page an admin can open, by URL pattern name."""
    return {name: reverse(name, kwargs=sample.get(name, {})) for name, (get, _) in EXPECTED.items() if get[3] == 200}


def notices(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


@pytest.mark.django_db
def test_every_paginated_list_tells_when_the_page_asked_for_does_not_exist(sample: dict[str, Any], admin_client: Client) -> None:
    paginated = set()
    for name, url in page_urls(sample).items():
        response = admin_client.get(url, {"page": "99999"})
        if not (response.context and isinstance(response.context.get("page"), Page)):
            continue
        paginated.add(name)
        last = response.context["page"].paginator.num_pages
        assert response.status_code == 200, name
        assert response.context["page"].number == last, name
        assert notices(response) == [f"There is no page 99999: showing page {last} of {last}."], name
        assert f"There is no page 99999: showing page {last} of {last}." in response.content.decode(), name
        for wrong in ("-1", "0", "abc"):
            response = admin_client.get(url, {"page": wrong})
            assert response.context["page"].number == 1, (name, wrong)
            assert notices(response) == [f"There is no page {wrong}: showing page 1 of {last}."], (name, wrong)
        for fine in ({}, {"page": "1"}, {"page": ""}):
            assert notices(admin_client.get(url, fine)) == [], (name, fine)
    assert paginated == PAGINATED


@pytest.mark.django_db
def test_past_the_end_shows_the_last_page_and_below_one_the_first(make_fleet: Any, viewer_client: Client) -> None:
    make_fleet(27)
    url = reverse("cluster-list")
    past = viewer_client.get(url, {"page": "7", "per_page": "25"})
    assert past.context["page"].number == 2 and len(past.context["page"]) == 2
    assert "There is no page 7: showing page 2 of 2." in past.content.decode()
    below = viewer_client.get(url, {"page": "-1", "per_page": "25"})
    assert below.context["page"].number == 1 and "There is no page -1: showing page 1 of 2." in below.content.decode()


@pytest.mark.django_db
def test_the_notice_shows_the_page_asked_for_as_text(viewer_client: Client, fleet: Any) -> None:
    response = viewer_client.get(reverse("cluster-list"), {"page": "<script>alert(1)</script>"})
    html = response.content.decode()
    assert "There is no page &lt;script&gt;alert(1)&lt;/sc: showing page 1 of 1." in html and "<script>alert" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{}, {"q": "cluster"}, {"per_page": "100"}])
def test_the_per_page_box_shows_the_size_the_list_is_paged_by(make_fleet: Any, viewer_client: Client, query: dict[str, str]) -> None:
    make_fleet(3)
    response = viewer_client.get(reverse("cluster-list"), query)
    size = response.context["page"].paginator.per_page
    assert size == int(query.get("per_page", 50))
    assert re.search(rf'<option value="{size}" selected>', response.content.decode())
