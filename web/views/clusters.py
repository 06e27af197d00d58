"""The cluster list (filters kept in the query string) and the cluster detail with its evidence."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString
from django.views.decorators.http import require_safe

from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.models import Cluster, ControlResult, Scan, Status
from posture.read import clusters as read
from posture.read.fleet import FleetState, fleet_state
from posture.read.scans import scan_get
from posture.remediation.commands import cluster_values, commented_commands
from web.forms import ClusterFilterForm
from web.views.common import VIEW, found_or_404, page_size, paginate, split_references
from web.views.exports import export_menu

# Rendered fragments are keyed by what changes them; the timeout only bounds memory.
FRAGMENT_SECONDS = 24 * 3600
# Offered on a control row: attest what Azure cannot show, request an exception for a gap.
ATTESTABLE = (Status.UNKNOWN,)
EXCEPTABLE = (Status.FAIL, Status.UNKNOWN)


SORTABLE = (
    ("name", "Cluster"),
    ("grade", "Grade"),
    ("score", "Score"),
    ("coverage", "Coverage"),
    ("failing", "Failing"),
    ("last_connectivity_at", "Last contact"),
)


def _sort_columns(current: str) -> dict[str, dict[str, str]]:
    """Per sortable column: its header label, aria-sort value and the sort a click asks for."""
    columns = {}
    for key, label in SORTABLE:
        aria = "ascending" if current == key else "descending" if current == "-" + key else ""
        columns[key] = {"label": label, "aria": aria, "next": "-" + key if current == key else key}
    return columns


@require_safe
@permission_required(VIEW, raise_exception=True)
def cluster_list(request: HttpRequest) -> HttpResponse:
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    options = read.cluster_filter_options(version=state.version)
    form = ClusterFilterForm(request.GET or None, options=options, scopes=state.scope_names)
    filters = form.filters() if form.is_bound else {"sort": "name", "removed": False}
    clusters = read.cluster_list(**filters)
    page = paginate(request, clusters, page_size(request), _count(state, filters, clusters))
    context = {
        "form": form,
        "page": page,
        "sort": filters["sort"],
        "active_filters": (active := sum(1 for k in filters if k not in ("sort", "removed")) + int(filters["removed"])),
        "filtered": active > 0,
        "sort_columns": _sort_columns(filters["sort"]),
        # The rows change only when an evaluation runs (or a scan stores clusters just before
        # one): the table is cached per fleet version and validated view (not the raw query
        # string, so junk parameters cannot multiply cache entries).
        "fragment_key": state.version,
        "rows_key": f"{sorted(filters.items())}|{page.number}|{page.paginator.per_page}",
        # The filter form shows the options (per fleet version) and what was typed in its own
        # fields, errors included, and the scopes; its dropdowns cost more than the rest of the page.
        "form_key": repr((form.is_bound, state.scope_names, sorted((name, request.GET.getlist(name)) for name in form.fields))),
        "fragment_timeout": FRAGMENT_SECONDS if state.version else 0,
        # The list's control filter keeps the clusters failing it: so do the exported rows.
        "export_menu": export_menu(request, status="fail" if request.GET.get("control") else ""),
    }
    return render(request, "posture/cluster_list.html", context)


def _count(state: FleetState, filters: dict[str, Any], clusters: Any) -> int:
    """Current clusters of the chosen scopes are what the latest snapshots counted; any other
    filter is counted once per evaluation (sorting does not change a count)."""
    narrowing = {k: v for k, v in filters.items() if k not in ("sort", "scope") and v}
    scope_known = not filters.get("scope") or state.selected is not None
    if not narrowing and scope_known and state.latest.exists:
        return state.latest.clusters
    key = repr(sorted((k, v) for k, v in filters.items() if k != "sort"))
    return read.cluster_count(clusters=clusters, key=key, version=state.version)


@functools.cache
def control_reference(control_id: str) -> SafeString:
    """A control's rationale, remediation and references: the same on every cluster's page, and
    the catalog is code, so rendered once per process instead of on every page view."""
    control = CONTROLS_BY_ID[control_id]
    printed, closer = split_references(control)
    return render_to_string("posture/partials/control_reference.html", {"control": control, "printed": printed, "closer": closer})


def _control_rows(cluster: Cluster, results: dict[str, ControlResult], may: dict[str, bool]) -> list[dict[str, Any]]:
    values = cluster_values(cluster)
    # The action links, built once here rather than with {% url %} and permission checks in
    # the template's loop (twice per control).
    attest, except_ = reverse("attestation-create"), reverse("exception-create")
    rows = []
    for control in CONTROLS:
        result = results.get(control.id)
        status = result.status if result else ""
        query = urlencode({"control": control.id, "cluster": cluster.pk})
        can_attest = status in ATTESTABLE and (result is None or result.raw_status == Status.UNKNOWN)
        rows.append(
            {
                "control": control,
                "result": result,
                "commands": commented_commands(control.remediation.commands, values),
                "reference": control_reference(control.id),
                "attest_url": f"{attest}?{query}" if can_attest and may["attest"] else "",
                "except_url": f"{except_}?{query}" if status in EXCEPTABLE and may["except"] else "",
            }
        )
    return rows


def _freshness_warning(cluster: Any) -> dict[str, Any] | None:
    """The newest finished scan of the cluster's scope, when it was partial or failed and did
    not refresh this cluster: what the page shows is older than that scan."""
    latest = cluster.latest_scan_id
    if latest is None or latest in (cluster.facts_scan_id, cluster.last_seen_scan_id):
        return None
    scan = scan_get(scan_id=latest)  # rare: the newest scan did not see this cluster
    if scan is None or scan.state not in (Scan.State.PARTIAL, Scan.State.FAILED):
        return None
    return {"pk": latest, "state": scan.get_state_display(), "created_at": scan.created_at}


@require_safe
@permission_required(VIEW, raise_exception=True)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = found_or_404(read.cluster_get(pk=pk), "cluster")
    attestations, exceptions = read.cluster_governance(cluster=cluster)
    # What the fragments show differs by these rights (they are part of the cache key): asked once.
    user = request.user
    may = {
        "attest": user.has_perm("posture.attest_control"),
        "except": user.has_perm("posture.request_exception"),
        "download": user.has_perm("posture.export_evidence"),
    }

    # Computed only when the cached fragment is rendered: evaluations change results_hash and
    # scans change facts_hash or last_seen_scan, which key the fragment (see cluster_detail.html).
    @functools.cache
    def rows() -> list[dict[str, Any]]:
        return _control_rows(cluster, read.cluster_results(cluster=cluster), may)

    @functools.cache
    def counts() -> dict[str, int]:
        tally: dict[str, int] = {}
        for row in rows():
            key = row["result"].status if row["result"] else "unevaluated"
            tally[key] = tally.get(key, 0) + 1
        return tally

    context = {
        "cluster": cluster,
        "fragment_key": f"{cluster.pk}:{cluster.results_hash}:{cluster.facts_hash}:{cluster.last_seen_scan_id}:{cluster.facts_scan_id}",
        "fragment_timeout": FRAGMENT_SECONDS,
        "rows": rows,
        "counts": counts,
        "changes": functools.cache(lambda: read.cluster_changes(cluster=cluster)),
        "history": functools.cache(lambda: read.cluster_score_history(cluster=cluster)),
        "evidence": functools.cache(lambda: read.cluster_evidence(cluster=cluster)),
        "attestations": attestations,
        "exceptions": exceptions,
        "stale_scan": _freshness_warning(cluster),
        "may": may,
    }
    return render(request, "posture/cluster_detail.html", context)
