"""A benchmark report as an export of the registry: one framework (the `framework` filter, required)
over the selected scope (the `scope` filter; none selects every scope), at the current state or,
with the `as_of` filter, rebuilt as it stood then (posture/exports/report_history.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from django.utils import timezone

from posture.catalog.frameworks import FRAMEWORKS
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.report_history import benchmark_report_as_of
from posture.exports.reports import benchmark_report, html_to_pdf, render_report
from posture.exports.rows import Progress
from posture.exports.writers import HashingWriter, Written
from posture.models import Scope

REPORT_FILTERS = frozenset({"framework", "scope", "as_of"})


def check_report(filters: ExportFilters) -> None:
    """A report needs its framework, and covers every cluster of its scopes: other filters would be
    silently ignored, so they are refused."""
    if not filters.framework:
        raise ExportError(f"A report is of one framework: give the framework filter (one of {', '.join(FRAMEWORKS)}).")
    others = sorted(set(filters.as_dict()) - REPORT_FILTERS)
    if others:
        raise ExportError(
            f"A report covers every cluster of its scopes, so the filters {', '.join(others)} do not apply to it "
            "(only framework, scope and as_of); the findings export takes them."
        )


def scope_ids(filters: ExportFilters) -> list[int] | None:
    """The selected scope's id, or None for every scope (the reports' convention)."""
    return list(Scope.objects.filter(name=filters.scope).values_list("pk", flat=True)) if filters.scope else None


def _report_export(to_pdf: bool) -> Callable[..., Written]:
    def write(filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written:
        check_report(filters)
        if filters.as_of is None:
            report = benchmark_report(filters.framework, scope_ids(filters), timezone.now())
        else:
            report = benchmark_report_as_of(filters.framework, scope_ids(filters), filters.as_of, progress=progress)
        html = render_report(report)
        sink = HashingWriter(out)
        if to_pdf:
            html_to_pdf(html, sink)  # type: ignore[arg-type]
        else:
            sink.write(html.encode("utf-8"))
        if progress:
            progress(1, 1)
        return sink.written(report.clusters)  # rows: the clusters the report covers

    return write


write_report_html = _report_export(to_pdf=False)
write_report_pdf = _report_export(to_pdf=True)
