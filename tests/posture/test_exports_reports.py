"""Benchmark reports (HTML and PDF) of evaluated fleets, read back and checked against the database."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from weasyprint import HTML

from posture.catalog.frameworks import FRAMEWORKS
from posture.evaluate.scoring import SECTION_CONTROLS
from posture.exports.reports import LISTED_STATUSES, STATUS_LABELS, ReportError, report_html, utc_label, write_report_pdf
from posture.models import Cluster, Scan, Scope
from posture.read.controls import section_clusters
from posture.scans.request import scan_request
from tests.web.conftest import HOSTILE, Fleet

AS_OF = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)
FOOTER = re.compile(r"Page (\d+) of (\d+)")


def section_parts(html: str) -> dict[str, str]:
    """The HTML of each section part, by section id."""
    pieces = re.split(r'<section class="section" id="section-([^"]+)">', html)[1:]
    return {htmllib.unescape(pieces[i]): pieces[i + 1] for i in range(0, len(pieces), 2)}


def listed_names(part: str, status: str) -> list[str]:
    """The cluster names of one status list in a section part."""
    block = part.split(f"<h3>{STATUS_LABELS[status]} clusters:", 1)[1].split("<h3>", 1)[0]
    return [htmllib.unescape(name) for name in re.findall(r"<tr><td>(.*?)</td><td>", block)]


def assert_lists_match_database(html: str, framework: str, scope_ids: list[int] | None, limit: int) -> int:
    """Every section is there, each status list states the database's exact total, shows the first
    `limit` clusters by name and says exactly how many more there are. Returns the lists cut short."""
    parts = section_parts(html)
    assert list(parts) == [s.id for s in FRAMEWORKS[framework].sections]
    cut = 0
    for section, part in parts.items():
        if not SECTION_CONTROLS.get((framework, section)):
            assert "No control of the catalog cites this section" in part
            continue
        for status in LISTED_STATUSES:
            clusters = section_clusters(framework=framework, section=section, status=status, scope_ids=scope_ids)
            names = list(clusters.values_list("name", flat=True))
            assert f"<h3>{STATUS_LABELS[status]} clusters: {len(names)}</h3>" in part, (section, status)
            assert listed_names(part, status) == names[:limit], (section, status)
            more = len(names) - limit
            label = STATUS_LABELS[status].lower()
            if more > 0:
                cut += 1
                assert f"… and {more} more {label} cluster{'s' if more > 1 else ''}, not listed here" in part
            else:
                assert f"more {label} cluster" not in part
    return cut


def pdf_text(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def assert_pdf_pages(path: Path, html: str, framework: str, scope_label: str) -> None:
    """As many pages as WeasyPrint lays out, each footed "Page X of N" in order, with the as-of
    time and the scope in its margins; every section title is in the text."""
    pages = pdf_text(path)
    assert len(pages) == len(HTML(string=html).render().pages) >= 2
    footers = [FOOTER.findall(text) for text in pages]
    assert footers == [[(str(n), str(len(pages)))] for n in range(1, len(pages) + 1)]
    for text in pages:
        assert f"As of {utc_label(AS_OF)}" in text
        assert scope_label in text
    words = " ".join(" ".join(pages).split())
    for section in FRAMEWORKS[framework].sections:
        assert " ".join(f"§ {section.id} {section.title}".split()) in words, section.id


@pytest.mark.django_db
def test_every_section_of_every_framework_states_the_database_totals(make_fleet: Callable[..., Fleet]) -> None:
    make_fleet(12)
    for framework in FRAMEWORKS:
        html = report_html(framework, None, AS_OF, limit=100)
        assert assert_lists_match_database(html, framework, None, limit=100) == 0


@pytest.mark.django_db
def test_a_list_longer_than_the_limit_says_exactly_how_many_more(make_fleet: Callable[..., Fleet]) -> None:
    make_fleet(12)
    html = report_html("cis-k8s", None, AS_OF, limit=3)
    assert assert_lists_match_database(html, "cis-k8s", None, limit=3) > 0
    assert "… and 9 more failing clusters, not listed here: the full list is in the evidence bundle's findings CSV." in html


@pytest.mark.django_db
def test_hostile_cluster_names_are_escaped(make_fleet: Callable[..., Fleet]) -> None:
    make_fleet(8, hostile=True)
    for framework in FRAMEWORKS:
        html = report_html(framework, None, AS_OF, limit=25)
        assert "<img" not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert set(HOSTILE) <= {htmllib.unescape(n) for n in re.findall(r"<tr><td>(.*?)</td>", html)}


@pytest.mark.django_db
def test_a_report_of_one_scope_counts_only_its_clusters(make_fleet: Callable[..., Fleet]) -> None:
    make_fleet(6, name="corp")
    other = make_fleet(9, name="lab")
    html = report_html("msft-arc-network", [other.scope.pk], AS_OF, limit=4)
    assert "Scope: lab" in html and "corp" not in html
    assert "<dt>Clusters</dt><dd>9</dd>" in html
    assert_lists_match_database(html, "msft-arc-network", [other.scope.pk], limit=4)


@pytest.mark.django_db
def test_unknown_framework_or_scope_is_refused(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(2)
    with pytest.raises(ReportError, match="unknown framework 'cis'"):
        report_html("cis", None, AS_OF)
    with pytest.raises(ReportError, match="no scope with id 999"):
        report_html("cis-k8s", [fleet.scope.pk, 999], AS_OF)


@pytest.mark.django_db
def test_every_framework_prints_with_page_numbers_as_of_and_scope_on_every_page(make_fleet: Callable[..., Fleet], tmp_path: Path) -> None:
    make_fleet(8, hostile=True)
    for framework in FRAMEWORKS:
        out = tmp_path / f"{framework}.pdf"
        write_report_pdf(framework, None, AS_OF, out, limit=5)
        assert_pdf_pages(out, report_html(framework, None, AS_OF, limit=5), framework, "All scopes (corp)")
    assert HOSTILE[0] in "".join(pdf_text(tmp_path / "cis-k8s.pdf"))  # printed as text, not markup


@pytest.mark.django_db(transaction=True)
def test_report_of_a_scanned_emulator_fleet(make_emulator: Any, emulator_scope: Any, settings: Any, tmp_path: Path) -> None:
    settings.ARC_AZURE_BACKOFF_BASE_SECONDS = 0.02
    emulator = make_emulator(clusters=60, seed=7)
    scope: Scope = emulator_scope(emulator, name="emulated")
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert created and scan.state == Scan.State.SUCCEEDED, (scan.state, scan.error)
    assert Cluster.objects.filter(removed_at__isnull=True).count() == 60

    html = report_html("cis-k8s", [scope.pk], AS_OF, limit=10)
    assert assert_lists_match_database(html, "cis-k8s", [scope.pk], limit=10) > 0
    assert "<img" not in html and "<script" not in html
    out = tmp_path / "cis.pdf"
    write_report_pdf("cis-k8s", [scope.pk], AS_OF, out, limit=10)
    assert_pdf_pages(out, html, "cis-k8s", "Scope: emulated")
