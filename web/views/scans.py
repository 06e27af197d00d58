from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from posture.models import Scan, Scope
from posture.scanning import scan_request

VIEW = "posture.view_posture"


@permission_required(VIEW, raise_exception=True)
def overview(request: HttpRequest) -> HttpResponse:
    scopes = list(Scope.objects.all())
    for scope in scopes:
        scope.last_scan = scope.scans.order_by("-created_at").first()
    return render(request, "posture/overview.html", {"scopes": scopes})


@permission_required(VIEW, raise_exception=True)
def scan_list(request: HttpRequest) -> HttpResponse:
    scans = Scan.objects.select_related("scope", "requested_by")[:100]
    return render(request, "posture/scan_list.html", {"scans": scans})


@permission_required(VIEW, raise_exception=True)
def scan_detail(request: HttpRequest, scan_id: str) -> HttpResponse:
    scan = get_object_or_404(Scan.objects.select_related("scope"), pk=scan_id)
    return render(request, "posture/scan_detail.html", {"scan": scan})


@require_POST
@permission_required("posture.run_scan", raise_exception=True)
def scan_start(request: HttpRequest, name: str) -> HttpResponse:
    scope = get_object_or_404(Scope, name=name)
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.MANUAL, user=request.user)
    if not created:
        messages.info(request, f"A scan of {scope.name} is already {scan.state}; showing it.")
    return redirect("scan-detail", scan_id=scan.pk)
