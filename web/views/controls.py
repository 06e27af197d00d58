"""Controls: fleet results per control, the affected clusters, and remediation for all of them."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.models import Status
from posture.read import controls as read
from posture.read.fleet import fleet_state
from posture.remediation.commands import cluster_values, commented_commands
from posture.remediation.script import control_policies, remediation_script
from web.views.common import EXPORT, VIEW, found_or_404, paginate, split_references
from web.views.exports import export_menu

LIST_STATUSES = (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED, Status.ATTESTED, Status.PASS, Status.NOT_APPLICABLE)


@require_safe
@permission_required(VIEW, raise_exception=True)
def control_list(request: HttpRequest) -> HttpResponse:
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    rows = [{"control": c, "counts": state.latest.control_counts(c.id)} for c in CONTROLS]
    return render(request, "posture/control_list.html", {"state": state, "rows": rows, "statuses": LIST_STATUSES})


@require_safe
@permission_required(VIEW, raise_exception=True)
def control_detail(request: HttpRequest, control_id: str) -> HttpResponse:
    control = found_or_404(CONTROLS_BY_ID.get(control_id), "control")
    status = request.GET.get("status", Status.FAIL)
    if status not in LIST_STATUSES:
        status = Status.FAIL
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    scope_ids = state.scope_ids if state.selected else None
    counts = state.latest.control_counts(control.id)
    clusters = read.control_clusters(control=control.id, status=status, scope_ids=scope_ids)
    # The snapshot counted them when the results were last written.
    page = paginate(request, clusters, count=counts.get(status, 0) if state.latest.exists else None)
    results = read.results_for(clusters=page, control=control.id)
    rows = [(cluster, results.get(cluster.pk)) for cluster in page]
    printed, closer = split_references(control)
    # Commands for the clusters on this page; the download has them for the whole failing set.
    commands = (
        [(c, commented_commands(control.remediation.commands, cluster_values(c, r.private_link_scope_id if r else None))) for c, r in rows]
        if status == Status.FAIL
        else []
    )
    context = {
        "state": state,
        "control": control,
        "status": status,
        "statuses": LIST_STATUSES,
        "counts": counts,
        "page": page,
        "rows": rows,
        "commands": commands,
        "policies": control_policies(control),
        "printed": printed,
        "closer": closer,
        "export_menu": export_menu(request, control=control.id, status=status),
    }
    return render(request, "posture/control_detail.html", context)


@require_safe
@permission_required(EXPORT, raise_exception=True)
def control_remediation(request: HttpRequest, control_id: str) -> StreamingHttpResponse:
    control = found_or_404(CONTROLS_BY_ID.get(control_id), "control")
    state = fleet_state(scope_name=request.GET.get("scope") or None)
    scope_ids = state.scope_ids if state.selected else None
    label = state.selected.name if state.selected else "all scopes"
    targets = read.remediation_targets(control=control.id, scope_ids=scope_ids)
    response = StreamingHttpResponse(remediation_script(control, targets, label), content_type="text/x-shellscript; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="remediate-{control.id.lower()}.sh"'
    return response
