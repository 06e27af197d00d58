"""Exports: start one from a page's Export menu, follow it on the Exports page, download the file;
the audit log of every export for admins.

Small findings and scorecards exports stream straight back; larger ones and every other kind are
built by a task (posture.exports.jobs) and downloaded from the Exports page when done.
"""

from __future__ import annotations

import tempfile
import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from posture.exports import jobs
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.registry import export_type
from posture.exports.run import export_to_file
from posture.models import Export
from web.views.common import EXPORT, MANAGE_USERS, found_or_404, json_errors, paginate

# Kinds that can stream straight back when small; the others are always built by a task.
STREAMABLE = ("findings", "scorecards")
# Query parameters of a page that only present it (order, paging): not filters of an export.
PRESENTATION = ("sort", "page", "per_page")
ACTIVE = (Export.State.PENDING, Export.State.RUNNING)


# The Export menu: (kind, format, label). Reports are offered on benchmark pages only.
DATA_EXPORTS = (
    ("findings", "csv", "Findings · CSV"),
    ("findings", "jsonl", "Findings · JSON Lines"),
    ("findings", "xlsx", "Findings · Excel"),
    ("scorecards", "csv", "Scorecards · CSV"),
    ("oscal", "json", "OSCAL assessment results · JSON"),
)
REPORT_EXPORTS = (("report", "html", "Benchmark report · HTML"), ("report", "pdf", "Benchmark report · PDF"))
BUNDLE_EXPORT = ("bundle", "zip", "Evidence bundle · zip")


def export_menu(request: HttpRequest, *, report: bool = False, **fixed: str) -> dict[str, Any]:
    """What a page's Export menu posts: each kind × format with the page's filters. `fixed` are
    the filters the page itself stands for (its framework, section, control, status tab); a
    benchmark report takes only the scope and the framework."""
    query = export_query(request.GET, **fixed)
    items = [(kind, fmt, label, query) for kind, fmt, label in DATA_EXPORTS]
    if report:
        report_query = export_query(QueryDict(mutable=True), scope=request.GET.get("scope", ""), framework=fixed["framework"])
        items += [(kind, fmt, label, report_query) for kind, fmt, label in REPORT_EXPORTS]
    items.append((*BUNDLE_EXPORT, query))
    # The as-of form offers the same items, of the kinds that rebuild the past: each choice carries
    # its kind, format and filters as "kind:format?query" (a report's are only scope and framework).
    as_of = [(f"{kind}:{fmt}?{q}", label) for kind, fmt, label, q in items if export_type(kind, fmt).rebuilds_past]
    return {"items": items, "next": request.get_full_path(), "query": query, "as_of_items": as_of}


def export_query(params: QueryDict, **fixed: str) -> str:
    """The query string that carries a page's filters to the start view: its own non-blank
    parameters without the presentation ones, plus `fixed`. A filter exports cannot apply
    stays, so the start view refuses it with a message rather than export more than the page
    shows."""
    query = QueryDict(mutable=True)
    for name, values in params.lists():
        if name not in PRESENTATION and name not in fixed:
            query.setlist(name, [v for v in values if v.strip()])
    for name, value in fixed.items():
        if value:
            query[name] = value
    return query.urlencode()


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(EXPORT, raise_exception=True)
def export_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _start(request)
    exports = Export.objects.filter(requested_by=request.user).order_by("-created_at")
    page = paginate(request, exports)
    for export in page:
        export.live = export_progress(export) if export.state in ACTIVE else None
    active = any(export.live for export in page)
    return render(request, "posture/export_list.html", {"page": page, "active": active, "now": timezone.now()})


def _start(request: HttpRequest) -> HttpResponse:
    kind, fmt = request.POST.get("kind", ""), request.POST.get("format", "")
    params = request.GET.copy()
    if request.POST.get("as_of_export"):  # the as-of form's choice: "kind:format?query" (export_menu)
        choice, _, query = request.POST["as_of_export"].partition("?")
        kind, _, fmt = choice.partition(":")
        params = QueryDict(query, mutable=True)
    if request.POST.get("as_of", "").strip():  # the menu's as-of form (a datetime-local, read as UTC)
        params["as_of"] = request.POST["as_of"]
    try:
        filters = ExportFilters.parse(params)
        as_type = export_type(kind, fmt)
        if kind in STREAMABLE and _estimated_rows(kind, filters) <= jobs.SMALL_EXPORT_ROWS:
            return _stream(request, kind, fmt, filters, as_type.content_type, as_type.extension)
        export = jobs.request_export(user=request.user, kind=kind, fmt=fmt, filters=filters)
    except ExportError as exc:
        messages.error(request, str(exc))
        return redirect(_back(request))
    messages.success(request, f"Export of {export.kind} ({export.format}) requested: it is built in the background.")
    return redirect("export-list")


def _estimated_rows(kind: str, filters: ExportFilters) -> int:
    """Rows the export would have (findings: clusters × controls), counted only up to just past
    the small-export limit so a large fleet costs one bounded query."""
    per_cluster = len(filters.controls()) if kind == "findings" else 1
    if per_cluster == 0:
        return 0
    limit = jobs.SMALL_EXPORT_ROWS // per_cluster + 1
    return filters.clusters()[:limit].count() * per_cluster


def _stream(request: HttpRequest, kind: str, fmt: str, filters: ExportFilters, content_type: str, extension: str) -> FileResponse:
    """Written to a temporary file first (constant memory; export_to_file audits it), so a
    failure is an error page rather than a truncated download."""
    out = tempfile.TemporaryFile()
    try:
        export = export_to_file(kind, fmt, filters, out, user=request.user)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    response = FileResponse(out, as_attachment=True, filename=download_name(export, extension), content_type=content_type)
    response["X-Content-SHA256"] = export.sha256
    return response


def _back(request: HttpRequest) -> str:
    """The page the menu was on, when it is one of ours; else the Exports page."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("export-list")


def download_name(export: Export, extension: str) -> str:
    """arc-posture-<kind>-<date>.<ext>: made of our own kind names and a date, never of input."""
    return f"arc-posture-{export.kind}-{export.created_at:%Y-%m-%d}.{extension}"


def _own_export(request: HttpRequest, export_id: Any) -> Export:
    """The export, for its creator or an admin; anyone else gets the same 404 as for no export."""
    try:
        export_uuid = uuid.UUID(str(export_id))
    except ValueError:
        raise Http404("No such export") from None
    export = found_or_404(Export.objects.filter(pk=export_uuid).first(), "export")
    if export.requested_by_id != request.user.pk and not request.user.has_perm(MANAGE_USERS):
        raise Http404("No such export")
    return export


@never_cache
@json_errors
@require_safe
@permission_required(EXPORT, raise_exception=True)
def export_progress_json(request: HttpRequest, export_id: Any) -> JsonResponse:
    """Polled every 2 s by static/js/scan-progress.js while the export is pending or running."""
    export = _own_export(request, export_id)
    return JsonResponse(export_progress(export))


def export_progress(export: Export) -> dict[str, Any]:
    done, total = export.progress_done, export.progress_total
    finished = export.state not in ACTIVE
    fraction = 1.0 if export.state == Export.State.SUCCEEDED else min(done / total, 1.0) if total else 0.0
    label = Export.State(export.state).label
    return {
        "state": export.state,
        "state_label": label,
        "finished": finished,
        "fraction": round(fraction, 4),
        "percent": round(100 * fraction),
        "progress_done": done,
        "progress_total": total,
        "announce": f"Export {label.lower()}, {round(100 * fraction)}% done ({done:,} of {total:,} rows)",
    }


@require_safe
@permission_required(EXPORT, raise_exception=True)
def export_download(request: HttpRequest, export_id: Any) -> FileResponse:
    export = _own_export(request, export_id)
    if export.state != Export.State.SUCCEEDED or not export.file_name:
        raise Http404("This export has no file to download")
    if export.expires_at is not None and export.expires_at <= timezone.now():
        raise Http404("This export has expired")
    as_type = export_type(export.kind, export.format)
    response = FileResponse(
        jobs.export_file(export), as_attachment=True, filename=download_name(export, as_type.extension), content_type=as_type.content_type
    )
    response["X-Content-SHA256"] = export.sha256
    return response


@require_safe
@permission_required(MANAGE_USERS, raise_exception=True)
def export_audit(request: HttpRequest) -> HttpResponse:
    exports = Export.objects.select_related("requested_by").order_by("-created_at")
    return render(request, "posture/export_audit.html", {"page": paginate(request, exports)})
