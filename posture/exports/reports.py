"""Benchmark reports: one framework of the catalog over a set of scopes, at the current state,
as printable HTML and as PDF from one template (templates/exports/benchmark_report.html); the
same report as of a past time is report_history's.

Totals come from the scopes' latest fleet snapshots (what the evaluation counted when it wrote
the results); each cluster list shows at most `limit` clusters by name and says exactly how
many more there are, whose full list is the evidence bundle's findings CSV. So a report costs
a few queries per section and stays a few pages long at any fleet size.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.template.loader import render_to_string

from posture.catalog.controls import CATALOG_VERSION, CONTROLS_BY_ID, Control
from posture.catalog.frameworks import FRAMEWORKS, Framework, Section
from posture.evaluate.scoring import SECTION_CONTROLS
from posture.exports.charts import StatusBars, status_bars
from posture.models import Cluster, FleetSnapshot, Scope, Status
from posture.read.controls import section_clusters
from posture.read.fleet import FleetSummary, scopes_annotated, summarize

DEFAULT_LIMIT = 25
TEMPLATE = "exports/benchmark_report.html"
# The section statuses whose clusters are listed, in the report's order (fail-dominant).
LISTED_STATUSES = (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED, Status.PASS)
STATUS_LABELS = {
    Status.FAIL: "Failing",
    Status.UNKNOWN: "Unknown",
    Status.EXCEPTED: "Excepted",
    Status.PASS: "Passing",
    Status.NOT_APPLICABLE: "Not applicable",
}
CLUSTER_COLUMNS = ("pk", "name", "subscription_id", "resource_group", "location")


class ReportError(ValueError):
    """A report asked for something the catalog or the database does not hold."""


@functools.cache
def product_version() -> str:
    with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def utc_label(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class ClusterList:
    """The clusters of one section status: the first `limit` by name, and the exact total."""

    status: str
    label: str
    total: int
    clusters: list[Cluster]

    @property
    def more(self) -> int:
        return self.total - len(self.clusters)


def _tallies(counts: dict[str, int]) -> list[tuple[str, int]]:
    """(label, clusters) for each status in the report's order; attested results count as passing."""
    passing = {Status.PASS: counts.get(Status.PASS, 0) + counts.get(Status.ATTESTED, 0)}
    return [(label, passing.get(status, counts.get(status, 0))) for status, label in STATUS_LABELS.items()]


@dataclass(frozen=True)
class ControlRow:
    control: Control
    counts: dict[str, int]

    @property
    def tallies(self) -> list[tuple[str, int]]:
        return _tallies(self.counts)


@dataclass(frozen=True)
class SectionReport:
    section: Section
    controls: list[ControlRow]
    counts: dict[str, int]
    lists: list[ClusterList]

    @property
    def tallies(self) -> list[tuple[str, int]]:
        return _tallies(self.counts)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.tallies)


@dataclass(frozen=True)
class BenchmarkReport:
    framework: Framework
    scopes: list[Scope]
    all_scopes: bool
    as_of: dt.datetime
    evaluated_at: dt.datetime | None
    clusters: int
    sections: list[SectionReport]
    chart: StatusBars
    limit: int
    product_version: str
    catalog_version: str
    rebuilt: bool = False  # rebuilt from the stored history as of `as_of` (report_history)

    @property
    def as_of_label(self) -> str:
        return utc_label(self.as_of)

    @property
    def evaluated_label(self) -> str:
        return utc_label(self.evaluated_at) if self.evaluated_at else "never evaluated"

    @property
    def scope_label(self) -> str:
        names = ", ".join(scope.name for scope in self.scopes) or "none"
        return f"All scopes ({names})" if self.all_scopes else f"Scope: {names}"


def _scopes(scope_ids: Sequence[int] | None) -> list[Scope]:
    scopes = scopes_annotated()
    if scope_ids is None:
        return list(scopes)
    chosen = list(scopes.filter(pk__in=scope_ids))
    missing = set(scope_ids) - {scope.pk for scope in chosen}
    if missing:
        raise ReportError(f"no scope with id {', '.join(str(pk) for pk in sorted(missing))}")
    return chosen


def _latest_summary(scopes: list[Scope]) -> FleetSummary:
    ids = [scope.latest_snapshot_id for scope in scopes if scope.latest_snapshot_id]  # type: ignore[attr-defined]
    return summarize(list(FleetSnapshot.objects.filter(pk__in=ids).order_by("pk")) if ids else [])


def _cluster_list(framework: str, section: str, status: str, total: int, scope_ids: list[int], limit: int) -> ClusterList:
    clusters: list[Cluster] = []
    if total and limit:
        found = section_clusters(framework=framework, section=section, status=status, scope_ids=scope_ids)
        clusters = list(found.only(*CLUSTER_COLUMNS)[:limit])
    return ClusterList(status, STATUS_LABELS[status], total, clusters)


# (section id, status, the snapshot's count of clusters in it) -> that status's cluster list.
Listing = Callable[[str, str, int], ClusterList]


def _section_report(framework: Framework, section: Section, summary: FleetSummary, listing: Listing) -> SectionReport:
    control_ids = SECTION_CONTROLS.get((framework.id, section.id), [])
    counts = summary.section_counts(framework.id, section.id)
    return SectionReport(
        section=section,
        controls=[ControlRow(CONTROLS_BY_ID[c], summary.control_counts(c)) for c in control_ids],
        counts=counts,
        lists=[listing(section.id, s, counts.get(s, 0)) for s in LISTED_STATUSES],
    )


def framework_and_scopes(framework_id: str, scope_ids: Sequence[int] | None, limit: int) -> tuple[Framework, list[Scope]]:
    """The report's framework and scopes (None: every scope), or a ReportError naming what is wrong."""
    framework = FRAMEWORKS.get(framework_id)
    if framework is None:
        raise ReportError(f"unknown framework {framework_id!r}; choose one of {', '.join(FRAMEWORKS)}")
    if limit < 0:
        raise ReportError("the list limit cannot be negative")
    return framework, _scopes(scope_ids)


def benchmark_report(framework_id: str, scope_ids: Sequence[int] | None, as_of: dt.datetime, limit: int = DEFAULT_LIMIT) -> BenchmarkReport:
    """The report's data: every section of the framework over the scopes (None: every scope),
    at the current state (`as_of` is the time it names; the past is report_history's).

    Reads the scopes' latest snapshots for every total and at most `limit` clusters per section
    status (a query each), never one query per cluster.
    """
    framework, scopes = framework_and_scopes(framework_id, scope_ids, limit)
    ids = [scope.pk for scope in scopes]

    def listing(section: str, status: str, total: int) -> ClusterList:
        return _cluster_list(framework.id, section, status, total, ids, limit)

    return assemble_report(framework, scopes, scope_ids is None, as_of, _latest_summary(scopes), listing, limit)


def assemble_report(
    framework: Framework,
    scopes: list[Scope],
    all_scopes: bool,
    as_of: dt.datetime,
    summary: FleetSummary,
    listing: Listing,
    limit: int,
    *,
    rebuilt: bool = False,
) -> BenchmarkReport:
    """A report from its totals (`summary`) and its cluster lists (`listing`)."""
    sections = [_section_report(framework, section, summary, listing) for section in framework.sections]
    chart = status_bars([(s.section.id, s.counts) for s in sections], STATUS_LABELS)
    return BenchmarkReport(
        framework=framework,
        scopes=scopes,
        all_scopes=all_scopes,
        as_of=as_of,
        evaluated_at=summary.created_at,
        clusters=summary.clusters,
        sections=sections,
        chart=chart,
        limit=limit,
        product_version=product_version(),
        catalog_version=CATALOG_VERSION,
        rebuilt=rebuilt,
    )


def report_html(framework_id: str, scope_ids: Sequence[int] | None, as_of: dt.datetime, limit: int = DEFAULT_LIMIT) -> str:
    """The printable HTML report (self-contained: its CSS is inline, its chart is inline SVG)."""
    return render_report(benchmark_report(framework_id, scope_ids, as_of, limit))


def render_report(report: BenchmarkReport) -> str:
    """The report's printable HTML, the source of its PDF too."""
    return render_to_string(TEMPLATE, {"report": report, "statuses": STATUS_LABELS})


def write_report_pdf(
    framework_id: str, scope_ids: Sequence[int] | None, as_of: dt.datetime, out: str | Path | IO[bytes], limit: int = DEFAULT_LIMIT
) -> None:
    """The same report as PDF: page numbers, the as-of time and the scope on every page."""
    html_to_pdf(report_html(framework_id, scope_ids, as_of, limit), out)


def html_to_pdf(html: str, out: str | Path | IO[bytes]) -> None:
    """A report's HTML (render_report) printed to PDF; `out` needs only write()."""
    from weasyprint import HTML  # imported on use: it loads Pango, which the web pages never need

    HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf(out)
