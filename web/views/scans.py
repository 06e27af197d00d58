"""Scans: history, detail with batches and evidence, live progress, "Scan now", evidence downloads."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from posture.models import Scan, Scope, WorkerHeartbeat
from posture.read import scans as read
from posture.scans.progress import scan_progress
from posture.scans.request import scan_request
from web.views.common import EXPORT, RUN_SCAN, VIEW, found_or_404, json_errors, paginate


@require_safe
@permission_required(VIEW, raise_exception=True)
def scan_list(request: HttpRequest) -> HttpResponse:
    scope, state = request.GET.get("scope", ""), request.GET.get("state", "")
    if state not in Scan.State.values:
        state = ""
    context = {
        "page": paginate(request, read.scan_list(scope=scope, state=state)),
        "scopes": list(Scope.objects.order_by("name")),
        "states": Scan.State.choices,
        "scope": scope,
        "state": state,
        "workers": list(WorkerHeartbeat.objects.order_by("queue")),
    }
    return render(request, "posture/scan_list.html", context)


@require_safe
@permission_required(VIEW, raise_exception=True)
def scan_detail(request: HttpRequest, scan_id: str) -> HttpResponse:
    scan = found_or_404(read.scan_get(scan_id=scan_id), "scan")
    context = {
        "scan": scan,
        "progress": scan_progress(scan.pk),
        "batches": read.scan_batches(scan=scan),
        "evidence": read.scan_evidence(scan=scan),
    }
    return render(request, "posture/scan_detail.html", context)


@never_cache
@json_errors
@require_safe
@permission_required(VIEW, raise_exception=True)
def scan_progress_json(request: HttpRequest, scan_id: str) -> JsonResponse:
    """Polled every 2 s by static/js/scan-progress.js while a scan runs. The route takes any id, so
    that a malformed one gets this endpoint's JSON 404 rather than the site's HTML one."""
    try:
        scan_uuid = uuid.UUID(scan_id)
    except ValueError:
        raise Http404("No such scan") from None
    scan = found_or_404(read.scan_get(scan_id=scan_uuid), "scan")
    progress = scan_progress(scan.pk)
    return JsonResponse(
        {
            "state": progress.state,
            "state_label": Scan.State(progress.state).label,
            "finished": progress.state in Scan.FINISHED_STATES,
            "fraction": round(progress.fraction, 4),
            "percent": round(100 * progress.fraction),
            "batches_total": progress.batches_total,
            "batches_finished": progress.batches_finished,
            "requests": progress.requests,
            "pages": progress.pages,
            "rows": progress.rows,
            "clusters": progress.clusters,
            "throttled": progress.throttled,
            "quota_wait_seconds": round(progress.quota_wait_seconds, 1),
        }
    )


@require_POST
@permission_required(RUN_SCAN, raise_exception=True)
def scan_start(request: HttpRequest, name: str) -> HttpResponse:
    scope = get_object_or_404(Scope, name=name)
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.MANUAL, user=request.user)
    if created:
        messages.success(request, f"Scan of {scope.name} requested.")
    else:
        messages.info(request, f"A scan of {scope.name} is already {scan.state}; showing it.")
    return redirect("scan-detail", scan_id=scan.pk)


@require_safe
@permission_required(EXPORT, raise_exception=True)
def evidence_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The raw Resource Graph / ARM responses of one query, gzip as stored (sha256 of the content)."""
    evidence = found_or_404(read.evidence_get(pk=pk), "evidence")
    response = HttpResponse(bytes(evidence.raw), content_type="application/gzip")
    filename = f"scan-{evidence.batch.scan_id}-batch-{evidence.batch.number}-{evidence.name}.jsonl.gz"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-SHA256"] = evidence.sha256
    return response
