"""Accessibility that the markup alone decides (tests/browser/test_accessibility.py runs axe-core
on the rendered pages): id references resolve, grade badges are readable, progress is announced."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posture.models import Scan, Scope
from tests.web.test_access import ADMIN_FORM, ADMIN_READ, ANALYST_FORM, EXPECTED, READ

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "app.css"
ID_REFERENCES = ("aria-describedby", "aria-labelledby", "aria-controls", "aria-owns", "for")


class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.references: list[tuple[str, str, str]] = []  # (tag, attribute, id)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            elif name in ID_REFERENCES and value and (name != "for" or tag == "label"):
                self.references.extend((tag, name, ref) for ref in value.split())


def dangling(html: str) -> list[tuple[str, str, str]]:
    parser = References()
    parser.feed(html)
    return [ref for ref in parser.references if ref[2] not in parser.ids]


def html_pages(client: Client, sample: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every page an admin can open, every form re-rendered with errors, and invalid filters."""
    pages = {}
    for name, expected in EXPECTED.items():
        if expected not in (READ, ADMIN_READ, ANALYST_FORM, ADMIN_FORM):
            continue
        url = reverse(name, kwargs=sample.get(name, {}))
        response = client.get(url)
        if response["Content-Type"].startswith("text/html"):
            pages[name] = response.content.decode()
        if expected in (ANALYST_FORM, ADMIN_FORM):
            pages[f"{name} (empty POST)"] = client.post(url).content.decode()
    bad_filters = "?grade=Z&connectivity=nope&control=ARC-XX&q=" + "x" * 300
    pages["cluster-list (invalid filters)"] = client.get(reverse("cluster-list") + bad_filters).content.decode()
    pages["password-change (empty POST)"] = client.post(reverse("password-change")).content.decode()
    anonymous = Client()
    pages["login"] = anonymous.get(reverse("login")).content.decode()
    pages["login (empty POST)"] = anonymous.post(reverse("login"), {"username": "", "password": ""}).content.decode()
    return pages


@pytest.mark.django_db
def test_every_aria_reference_points_at_an_element_on_the_page(sample: dict[str, Any], admin_client: Client) -> None:
    pages = html_pages(admin_client, sample)
    assert 'aria-describedby="id_grade_error"' in pages["cluster-list (invalid filters)"]  # the case that dangled
    assert 'aria-describedby="id_username_error"' in pages["login (empty POST)"]
    problems = {name: refs for name, html in pages.items() if (refs := dangling(html))}
    assert problems == {}


def css_colours() -> dict[str, str]:
    text = CSS.read_text(encoding="utf-8")
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", text))


def luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("grade", ["a", "b", "c", "d", "e", "f"])
def test_white_text_on_each_grade_badge_has_at_least_4_5_to_1_contrast(grade: str) -> None:
    text = CSS.read_text(encoding="utf-8")
    assert re.search(r"\.grade \{[^}]*color: #fff;", text)  # badge text is white
    assert f".grade-{grade.upper()} {{ background: var(--grade-{grade}); }}" in text
    ratio = contrast(css_colours()[f"grade-{grade}"], "#ffffff")
    assert ratio >= 4.5, f"grade {grade.upper()}: {ratio:.2f}:1"


@pytest.mark.django_db
def test_a_running_scans_progress_sits_in_a_polite_live_region(viewer_client: Client) -> None:
    scope = Scope.objects.create(name="live", tenant_id="contoso.onmicrosoft.com")
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, started_at=timezone.now(), batches_total=4, batches_done=1)
    for url in (reverse("scan-detail", args=[scan.pk]), reverse("overview")):
        html = viewer_client.get(url).content.decode()
        region = re.search(r'<p class="visually-hidden" role="status" aria-live="polite" data-announce [^>]*>([^<]*)</p>', html)
        assert region and region.group(1) == "Scan running, 25% done (1 of 4 batches)", url
