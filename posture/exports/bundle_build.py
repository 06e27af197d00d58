"""The evidence bundle as an export of the registry: everything an auditor needs, at the current
state or as of a past time (the `as_of` filter), in one signed zip.

    findings.csv, findings.jsonl   the selected findings (findings.csv is the file the reports'
                                   "full list is in the evidence bundle's findings CSV" names)
    scorecards.csv                 the selected clusters' scorecards
    reports/<framework>.html|.pdf  one report per framework of the catalog, over the scope
    evidence/scan-<id>/…           the raw Azure responses of every scan the selected clusters'
                                   facts came from
    governance/…                   the attestations and exceptions in force
    manifest.json (+ signature)    filters, scope, as-of, scans, row counts, every file's SHA-256

As of a past time T the manifest's as_of is T, and each part is what stood then: the findings,
scorecards and reports rebuilt from the history, the raw evidence of each scope's last scan
finished by T, the attestations and exceptions in force at T.

Excel is left out: one sheet holds at most 1,048,576 rows (70,000 clusters × 15 controls), and
streaming it is several times slower than CSV; findings.jsonl keeps every value exact for programs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

from django.db.models import QuerySet
from django.utils import timezone

from posture.catalog.frameworks import FRAMEWORKS
from posture.exports.bundle import EvidenceBundle
from posture.exports.bundle_contents import add_governance, add_scan_evidence
from posture.exports.filters import ExportFilters
from posture.exports.history import scans_as_of
from posture.exports.report_export import scope_ids
from posture.exports.report_history import PastLists, benchmark_report_as_of, past_section_lists
from posture.exports.reports import DEFAULT_LIMIT, benchmark_report, html_to_pdf, render_report
from posture.exports.rows import FINDINGS_COLUMNS, SCORECARD_COLUMNS, Progress, Row, findings_rows, scorecard_rows
from posture.exports.writers import HashingWriter, Written, csv_cell, csv_joined, write_csv_fields, write_jsonl
from posture.models import Cluster, Scope

FINDINGS_CSV = "findings.csv"
FINDINGS_JSONL = "findings.jsonl"
SCORECARDS_CSV = "scorecards.csv"
REPORTS = "reports"
REPORT_LISTS = "report lists"  # as of a past time: the pass that rebuilds every report's cluster lists
# A report costs about what a tenth of a findings pass does: its share of the progress bar.
REPORT_SHARE = 10

RowWriter = Callable[[Any, Sequence[str], BinaryIO], Written]


class Steps:
    """One progress bar over the bundle's parts: each part has a weight, and reports its own
    progress (done, total) as a share of that weight."""

    def __init__(self, progress: Progress | None, weights: dict[str, int]) -> None:
        self.progress = progress
        self.weights = weights
        self.total = sum(weights.values())
        self.finished = 0

    def part(self, name: str) -> Progress:
        def report(done: int, total: int) -> None:
            if self.progress and total:
                self.progress(self.finished + self.weights[name] * min(done, total) // total, self.total)

        return report

    def done(self, name: str) -> None:
        self.finished += self.weights[name]
        if self.progress:
            self.progress(self.finished, self.total)


def write_bundle(filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written:
    """The bundle of `filters`, written to `out`; rows: the findings it holds. With filters.as_of,
    every part is as it stood then: findings, scorecards and reports rebuilt from the history, the
    raw evidence of the scans in force then, the attestations and exceptions in force then."""
    past = filters.as_of is not None
    as_of = filters.as_of or timezone.now()
    clusters = filters.clusters()
    count = clusters.count()
    ids = scope_ids(filters)
    scopes = Scope.objects.order_by("name") if ids is None else Scope.objects.filter(pk__in=ids)
    share = max(1, count // REPORT_SHARE)
    steps = Steps(
        progress,
        {
            FINDINGS_CSV: max(1, count),
            FINDINGS_JSONL: max(1, count),
            SCORECARDS_CSV: max(1, count),
            **({REPORT_LISTS: share} if past else {}),
            **{framework: share for framework in FRAMEWORKS},
            "evidence": share,
            "governance": 1,
        },
    )
    sink = HashingWriter(out)
    scope = {"all_scopes": ids is None, "scopes": [{"id": s.pk, "name": s.name, "tenant_id": s.tenant_id} for s in scopes]}
    scans = _scans(clusters, as_of if past else None)
    with EvidenceBundle(sink, scope=scope, filters=filters.as_dict(), as_of=as_of, scan_ids=scans) as bundle:  # type: ignore[arg-type]
        csv_rows = findings_rows(filters, progress=steps.part(FINDINGS_CSV), cell=csv_cell, fuse=csv_joined)
        rows = _add_rows(bundle, FINDINGS_CSV, csv_rows, FINDINGS_COLUMNS, write_csv_fields)
        steps.done(FINDINGS_CSV)
        jsonl_rows = findings_rows(filters, progress=steps.part(FINDINGS_JSONL))
        _add_rows(bundle, FINDINGS_JSONL, jsonl_rows, FINDINGS_COLUMNS, write_jsonl)
        steps.done(FINDINGS_JSONL)
        scorecards = scorecard_rows(filters, progress=steps.part(SCORECARDS_CSV), cell=csv_cell)
        _add_rows(bundle, SCORECARDS_CSV, scorecards, SCORECARD_COLUMNS, write_csv_fields)
        steps.done(SCORECARDS_CSV)
        lists = None
        if past:  # one pass over the clusters then for every report's lists
            report_scopes = [scope.pk for scope in scopes]
            lists = past_section_lists(FRAMEWORKS, report_scopes, as_of, DEFAULT_LIMIT, progress=steps.part(REPORT_LISTS))
            steps.done(REPORT_LISTS)
        for framework in FRAMEWORKS:
            _add_report(bundle, framework, ids, as_of, lists)
            steps.done(framework)
        add_scan_evidence(bundle, scans)
        steps.done("evidence")
        add_governance(bundle, as_of)
        steps.done("governance")
    return sink.written(rows)


def _scans(clusters: QuerySet[Cluster], past: dt.datetime | None) -> list[Any]:
    """The scans the selected clusters' facts came from: each one's own now; as of a past time,
    their scopes' last scan finished by then (the scan its findings name)."""
    if past is None:
        return sorted(set(clusters.order_by().exclude(facts_scan_id=None).values_list("facts_scan_id", flat=True).distinct()))
    then = scans_as_of(past)
    scopes = set(clusters.order_by().values_list("scope_id", flat=True).distinct())
    return sorted({then[scope] for scope in scopes if scope in then})


def _add_rows(bundle: EvidenceBundle, name: str, rows: Iterator[Row], columns: Sequence[str], writer: RowWriter) -> int:
    with bundle.open(name) as member:
        member.rows = writer(rows, columns, member).rows  # type: ignore[arg-type]
    return member.rows


def _add_report(bundle: EvidenceBundle, framework: str, ids: list[int] | None, as_of: dt.datetime, past: PastLists | None) -> None:
    """The framework's report as HTML and PDF from one rendering (as of then, given the lists of
    the past); the manifest records what it covers."""
    if past is None:
        report = benchmark_report(framework, ids, as_of)
    else:
        report = benchmark_report_as_of(framework, ids, as_of, past.limit, lists=past)
    html = render_report(report)
    paths = {fmt: f"{REPORTS}/{framework}.{fmt}" for fmt in ("html", "pdf")}
    bundle.add(paths["html"], html.encode("utf-8"), rows=report.clusters)
    with bundle.open(paths["pdf"], rows=report.clusters) as member:
        html_to_pdf(html, member)  # type: ignore[arg-type]
    bundle.record(
        REPORTS,
        {
            "framework": framework,
            **paths,
            "clusters": report.clusters,
            "evaluated_at": report.evaluated_label,
            "rebuilt_from_history": report.rebuilt,
            "covers": "every cluster of the scope; the filters select the findings and scorecards only",
        },
    )
