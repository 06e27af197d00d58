"""Helpers shared by the page modules: permissions, pagination, lookups that 404, references."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from posture.catalog.controls import Control
from posture.catalog.frameworks import PRINTED, Ref
from web.paging import DEFAULT_PAGE_SIZE, PAGE_SIZES

logger = logging.getLogger(__name__)

T = TypeVar("T")

VIEW = "posture.view_posture"
RUN_SCAN = "posture.run_scan"
ATTEST = "posture.attest_control"
REQUEST_EXCEPTION = "posture.request_exception"
EXPORT = "posture.export_evidence"
MANAGE_SCOPES = "posture.manage_scopes"
APPROVE = "posture.approve_exception"
MANAGE_USERS = "posture.manage_users"


def page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("per_page", DEFAULT_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


class CountedPaginator(Paginator):
    """A paginator told its count (from a fleet snapshot or a cached count) instead of running
    COUNT(*) over the fleet on every page view."""

    def __init__(self, object_list: Any, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:  # type: ignore[override]
        return self._known_count


def paginate(request: HttpRequest, items: QuerySet[Any] | list[Any], per_page: int | None = None, count: int | None = None) -> Page:
    """The requested page. A page that does not exist gives the nearest one (the first below 1 or
    for no number, the last past the end) and a notice saying so, not an error."""
    size = per_page or page_size(request)
    paginator = Paginator(items, size) if count is None else CountedPaginator(items, size, count)
    requested = request.GET.get("page") or "1"
    try:
        return paginator.page(requested)
    except InvalidPage:
        number = _nearest_page(requested, paginator.num_pages)
    messages.warning(request, f"There is no page {requested[:20]}: showing page {number} of {paginator.num_pages}.")
    return paginator.page(number)


def _nearest_page(requested: str, last: int) -> int:
    try:
        return 1 if int(requested) < 1 else last
    except ValueError:
        return 1


def found_or_404(item: T | None, what: str) -> T:
    """`item`, or a 404 page when the reader or catalog lookup found nothing."""
    if item is None:
        raise Http404(f"No such {what}")
    return item


def split_references(control: Control) -> tuple[list[Ref], list[Ref]]:
    """(as printed by Microsoft, closer fit) references of a control."""
    printed = [ref for ref in control.references if ref.kind == PRINTED]
    closer = [ref for ref in control.references if ref.kind != PRINTED]
    return printed, closer


def json_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A JSON endpoint answers its errors in JSON too, not with an HTML page; a client that is not
    signed in gets a 401, not a redirect to the sign-in page."""

    @login_not_required
    @wraps(view)
    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Not signed in."}, status=401)
        try:
            response = view(request, *args, **kwargs)
        except PermissionDenied:
            return JsonResponse({"error": "Permission denied."}, status=403)
        except Http404 as exc:
            return JsonResponse({"error": str(exc) or "Not found."}, status=404)
        except Exception:
            logger.exception("JSON view %r failed", request.path)
            return JsonResponse({"error": "Internal error; it has been logged."}, status=500)
        if response.status_code == 405:
            return JsonResponse({"error": "Method not allowed."}, status=405, headers={"Allow": response["Allow"]})
        return response

    return answer
