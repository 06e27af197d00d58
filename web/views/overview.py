"""The fleet overview: score, grades, trend, what got worse, stale clusters, last scans."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from posture.catalog.controls import CONTROLS_BY_ID
from posture.models import NetworkPath, Scan, Status
from posture.read import fleet as read
from posture.scans.progress import ScanProgress
from posture.scans.schedules import unrunnable_schedules
from web.views.common import VIEW

TOP_FAILING = 8


def _top_failing(summary: read.FleetSummary) -> list[dict[str, Any]]:
    rows = [
        {"control": CONTROLS_BY_ID[c], "fail": counts.get(Status.FAIL, 0), "total": sum(counts.values())}
        for c, counts in summary.controls.items()
        if c in CONTROLS_BY_ID and counts.get(Status.FAIL)
    ]
    return sorted(rows, key=lambda r: (-r["fail"], r["control"].id))[:TOP_FAILING]


def _control_deltas(latest: read.FleetSummary, previous: read.FleetSummary) -> list[dict[str, Any]]:
    """Controls whose failing-cluster count moved between the two latest evaluations."""
    rows = []
    for control in CONTROLS_BY_ID:
        now = latest.control_counts(control).get(Status.FAIL, 0)
        before = previous.control_counts(control).get(Status.FAIL, 0)
        if now != before:
            rows.append({"control": CONTROLS_BY_ID[control], "before": before, "now": now, "delta": now - before})
    return sorted(rows, key=lambda r: (-r["delta"], r["control"].id))


def _delta(now: float | None, before: float | None) -> float | None:
    return round(now - before, 1) if now is not None and before is not None else None


def _list_url(scope: str | None, **filters: str) -> str:
    params = {"scope": scope, **filters} if scope else filters
    return reverse("cluster-list") + "?" + urlencode(params)


def _distribution_rows(summary: read.FleetSummary, scope: str | None) -> dict[str, list[dict[str, Any]]]:
    """Bar rows for the grade, network path and connectivity charts, each linking to the list."""
    paths = dict(NetworkPath.choices)
    return {
        "grade_rows": [
            {
                "label": grade if grade != "-" else "No grade",
                "count": n,
                "cls": f"grade-{grade}" if grade != "-" else "grade-none",
                "url": _list_url(scope, grade=grade),
            }
            for grade, n in summary.grades.items()
        ],
        "path_rows": [
            {"label": paths.get(path, path), "count": n, "cls": f"path-{path}", "url": _list_url(scope, network_path=path)}
            for path, n in summary.paths.items()
        ],
        "connectivity_rows": [
            {
                "label": status,
                "count": n,
                "cls": f"conn-{status}",
                "url": _list_url(scope, connectivity=status) if status != "Unknown" else "",
            }
            for status, n in summary.connectivity.items()
        ],
    }


def _scan_progress(scan: Scan) -> ScanProgress:
    """Progress from the scan row alone (no query); the page's script fetches live figures."""
    return ScanProgress(
        state=scan.state,
        batches_total=scan.batches_total,
        batches_finished=scan.batches_done + scan.batches_failed,
        requests=scan.requests,
        pages=scan.pages,
        rows=scan.rows,
        clusters=scan.clusters,
        throttled=scan.throttled,
        quota_wait_seconds=scan.quota_wait_seconds,
    )


@require_safe
@permission_required(VIEW, raise_exception=True)
def overview(request: HttpRequest) -> HttpResponse:
    scope_name = request.GET.get("scope") or None
    state = read.fleet_state(scope_name=scope_name, with_scans=True)
    if scope_name and state.selected is None:
        messages.warning(request, "There is no scope of that name; showing the whole fleet.")
    scope_ids = state.scope_ids if state.selected else None
    latest, previous = state.latest, state.previous
    context = {
        "state": state,
        "summary": latest,
        # Lazy: read only when the cached fragment (keyed by the fleet version) is rendered.
        "trend": functools.cache(lambda: read.fleet_trend(scope_ids=state.scope_ids) if latest.exists else []),
        "fragment_key": f"{state.version}|{state.selected.pk if state.selected else ''}",
        "fragment_timeout": 24 * 3600 if state.version else 0,
        "top_failing": _top_failing(latest),
        "deltas": _control_deltas(latest, previous),
        "score_delta": _delta(latest.score, previous.score),
        "coverage_delta": _delta(latest.coverage, previous.coverage),
        "changes": functools.cache(lambda: read.recent_changes(scope_ids=scope_ids, version=state.version) if latest.exists else []),
        "stale": functools.cache(lambda: read.stale_clusters(scope_ids=scope_ids, version=state.version) if latest.exists else []),
        "stale_count": latest.control_counts(read.FRESHNESS_CONTROL).get(Status.FAIL, 0),
        "scope_rows": [(scope, state.last_scans.get(scope.pk)) for scope in state.scopes],
        "bad_schedules": unrunnable_schedules(state.scopes),
        "active_progress": {scan.pk: _scan_progress(scan) for scan in state.active_scans},
        **_distribution_rows(latest, state.selected.name if state.selected else None),
    }
    return render(request, "posture/overview.html", context)
