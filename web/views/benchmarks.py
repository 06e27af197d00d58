"""Benchmarks: framework → sections → controls → cluster counts, drilling down to clusters."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from posture.catalog.controls import CONTROLS_BY_ID
from posture.catalog.frameworks import FRAMEWORKS, PRINTED, Framework, Section
from posture.evaluate.scoring import SECTION_CONTROLS
from posture.models import Status
from posture.read.controls import section_clusters
from posture.read.fleet import FleetSummary, fleet_state
from web.views.common import VIEW, found_or_404, paginate
from web.views.exports import export_menu

SECTION_STATUSES = (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED, Status.PASS)


# Which of Microsoft's printed references name a section (e.g. R1-CIS names CIS 1, 2 and 4).
PRINTED_CITES: dict[tuple[str, str], list[Section]] = {}
for _printed in FRAMEWORKS.values():
    for _section in _printed.sections:
        for _cite in _section.cites:
            PRINTED_CITES.setdefault(_cite, []).append(_section)


def _section_rows(framework: Framework, summary: FleetSummary) -> list[dict[str, Any]]:
    rows = []
    for section in framework.sections:
        controls = [CONTROLS_BY_ID[c] for c in SECTION_CONTROLS.get((framework.id, section.id), [])]
        counts = summary.section_counts(framework.id, section.id)
        rows.append(
            {
                "section": section,
                "counts": counts,
                "controls": [{"control": c, "counts": summary.control_counts(c.id)} for c in controls],
                "cites": [(FRAMEWORKS[f], FRAMEWORKS[f].section(s)) for f, s in section.cites],
                "printed_by": PRINTED_CITES.get((framework.id, section.id), []),
            }
        )
    return rows


@require_safe
@permission_required(VIEW, raise_exception=True)
def benchmark_list(request: HttpRequest) -> HttpResponse:
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    frameworks = []
    for framework in FRAMEWORKS.values():
        rows = _section_rows(framework, state.latest)
        frameworks.append(
            {
                "framework": framework,
                "sections": len(rows),
                "failing_sections": sum(1 for r in rows if r["counts"].get(Status.FAIL)),
                "cited_sections": sum(1 for r in rows if r["controls"]),
            }
        )
    return render(request, "posture/benchmark_list.html", {"state": state, "frameworks": frameworks, "printed": PRINTED})


@require_safe
@permission_required(VIEW, raise_exception=True)
def benchmark_detail(request: HttpRequest, framework: str) -> HttpResponse:
    fw = found_or_404(FRAMEWORKS.get(framework), "framework")
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    context = {
        "state": state,
        "framework": fw,
        "rows": _section_rows(fw, state.latest),
        "statuses": SECTION_STATUSES,
        "printed": PRINTED,
        "export_menu": export_menu(request, report=True, framework=fw.id),
    }
    return render(request, "posture/benchmark_detail.html", context)


@require_safe
@permission_required(VIEW, raise_exception=True)
def section_detail(request: HttpRequest, framework: str, section: str) -> HttpResponse:
    fw = found_or_404(FRAMEWORKS.get(framework), "framework")
    sec = found_or_404(next((s for s in fw.sections if s.id == section), None), "section")
    status = request.GET.get("status", Status.FAIL)
    if status not in SECTION_STATUSES:
        status = Status.FAIL
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    scope_ids = state.scope_ids if state.selected else None
    clusters = section_clusters(framework=fw.id, section=sec.id, status=status, scope_ids=scope_ids)
    controls = [CONTROLS_BY_ID[c] for c in SECTION_CONTROLS.get((fw.id, sec.id), [])]
    counts = state.latest.section_counts(fw.id, sec.id)
    context = {
        "state": state,
        "framework": fw,
        "section": sec,
        "status": status,
        "statuses": SECTION_STATUSES,
        "counts": counts,
        "controls": [{"control": c, "counts": state.latest.control_counts(c.id)} for c in controls],
        # The snapshot counted the section's clusters per status when the results were written.
        "page": paginate(request, clusters, count=counts.get(status, 0) if state.latest.exists else None),
        "export_menu": export_menu(request, report=True, framework=fw.id, section=sec.id, status=status),
    }
    return render(request, "posture/section_detail.html", context)
