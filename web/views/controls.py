"""Controls: fleet results per control, the affected clusters, and remediation for all of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from posture import selectors
from posture.catalog.controls import CONTROLS, Control
from posture.catalog.policies import POLICIES
from posture.models import Status
from web.views.common import (
    EXPORT,
    VIEW,
    cluster_values,
    comment_safe,
    fill_commands,
    get_control_or_404,
    needed_variables,
    paginate,
    split_references,
)

LIST_STATUSES = (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED, Status.ATTESTED, Status.PASS, Status.NOT_APPLICABLE)
# The download streams; this only bounds a runaway export (the largest supported fleet is 100,000).
MAX_SCRIPT_CLUSTERS = 100_000


@require_safe
@permission_required(VIEW, raise_exception=True)
def control_list(request: HttpRequest) -> HttpResponse:
    state = selectors.fleet_state(scope_name=request.GET.get("scope") or None)
    rows = [{"control": c, "counts": state.latest.control_counts(c.id)} for c in CONTROLS]
    return render(request, "posture/control_list.html", {"state": state, "rows": rows, "statuses": LIST_STATUSES})


def _policies(control: Control) -> list[Any]:
    return [POLICIES[guid] for guid in control.remediation.policies if guid in POLICIES]


@require_safe
@permission_required(VIEW, raise_exception=True)
def control_detail(request: HttpRequest, control_id: str) -> HttpResponse:
    control = get_control_or_404(control_id)
    status = request.GET.get("status", Status.FAIL)
    if status not in LIST_STATUSES:
        status = Status.FAIL
    state = selectors.fleet_state(scope_name=request.GET.get("scope") or None)
    scope_ids = state.scope_ids if state.selected else None
    counts = state.latest.control_counts(control.id)
    clusters = selectors.control_clusters(control=control.id, status=status, scope_ids=scope_ids)
    # The snapshot counted them when the results were last written.
    page = paginate(request, clusters, count=counts.get(status, 0) if state.latest.exists else None)
    results = selectors.results_for(clusters=page, control=control.id)
    rows = [(cluster, results.get(cluster.pk)) for cluster in page]
    printed, closer = split_references(control)
    # Commands for the clusters on this page; the download has them for the whole failing set.
    commands = (
        [(c, fill_commands(control.remediation.az, cluster_values(c, r.private_link_scope_id if r else None))) for c, r in rows]
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
        "policies": _policies(control),
        "printed": printed,
        "closer": closer,
    }
    return render(request, "posture/control_detail.html", context)


def remediation_script(control: Control, targets: Iterable[dict[str, Any]], scope_label: str) -> Iterator[str]:
    """A POSIX sh script fixing `targets` (cluster_values rows); every Azure value is quoted."""
    policies = _policies(control)
    yield "#!/bin/sh\n"
    yield f"# Arc Posture remediation for {control.id}: {comment_safe(control.title)}\n"
    yield f"# Scope: {comment_safe(scope_label)}. Generated {timezone.now():%Y-%m-%d %H:%M} UTC.\n"
    yield f"# {comment_safe(control.remediation.summary)}\n"
    yield "# Review before running: every command changes Azure resources. Values are shell-quoted.\n"
    yield "set -eu\n\n"
    needed = needed_variables(control.remediation.az)
    if needed:
        # Checked up front, so a missing value stops the script before it changes anything.
        yield f"# Set these to your own values first: {' '.join(needed)}\n"
        yield "".join(f': "${{{name}:?set {name}}}"\n' for name in needed) + "\n"
    subscriptions: list[str] = []
    seen: set[str] = set()  # subscription-wide commands repeat across clusters: write them once
    count = 0
    for values in targets:
        if count >= MAX_SCRIPT_CLUSTERS:
            yield f"# Stopped after {MAX_SCRIPT_CLUSTERS} clusters.\n"
            break
        count += 1
        if not subscriptions or subscriptions[-1] != values["subscription_id"]:
            subscriptions.append(values["subscription_id"])
        yield f"# {comment_safe(values['name'])} ({comment_safe(values['id'])})\n"
        for command in fill_commands(control.remediation.az, values) or ["# No command: see the portal steps on the control page."]:
            if command not in seen:
                seen.add(command)
                yield command + "\n"
        yield "\n"
    yield f"# {count} failing cluster(s).\n"
    if policies and subscriptions:
        yield "\n# Or fix them fleet-wide with Azure Policy: assign each built-in at the subscriptions (or a management group).\n"
        for policy in policies:
            yield f"# {comment_safe(policy.display_name)} ({policy.effect})\n"
            for sub in subscriptions:
                name = f"arcposture-{control.id.lower()}-{policy.guid[:8]}"
                yield f"# az policy assignment create --name {name} --policy {policy.guid} --scope /subscriptions/{comment_safe(sub)}\n"


@require_safe
@permission_required(EXPORT, raise_exception=True)
def control_remediation(request: HttpRequest, control_id: str) -> StreamingHttpResponse:
    control = get_control_or_404(control_id)
    state = selectors.fleet_state(scope_name=request.GET.get("scope") or None)
    scope_ids = state.scope_ids if state.selected else None
    label = state.selected.name if state.selected else "all scopes"
    targets = selectors.remediation_targets(control=control.id, scope_ids=scope_ids)
    response = StreamingHttpResponse(remediation_script(control, targets, label), content_type="text/x-shellscript; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="remediate-{control.id.lower()}.sh"'
    return response
