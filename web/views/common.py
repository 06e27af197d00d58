"""Helpers shared by the page modules: permissions, pagination, remediation templates."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.core.paginator import InvalidPage, Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from posture.catalog.controls import CONTROLS_BY_ID, Control, needs
from posture.catalog.frameworks import FRAMEWORKS, PRINTED, Ref

VIEW = "posture.view_posture"
RUN_SCAN = "posture.run_scan"
ATTEST = "posture.attest_control"
REQUEST_EXCEPTION = "posture.request_exception"
EXPORT = "posture.export_evidence"
MANAGE_SCOPES = "posture.manage_scopes"
APPROVE = "posture.approve_exception"
MANAGE_USERS = "posture.manage_users"

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
PLACEHOLDER_RE = re.compile(r"\{(name|resource_group|subscription_id|location|id|scope_id)\}")
SCOPE_ID_PLACEHOLDER = needs("PRIVATE_LINK_SCOPE_ID")
# The analyst's own values in the command templates: "${VNET:?set VNET}".
NEEDED_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?")
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")


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


def get_control_or_404(control_id: str) -> Control:
    control = CONTROLS_BY_ID.get(control_id)
    if control is None:
        raise Http404("No such control")
    return control


def get_framework_or_404(framework_id: str) -> Any:
    framework = FRAMEWORKS.get(framework_id)
    if framework is None:
        raise Http404("No such framework")
    return framework


def fill_commands(templates: Iterable[str], values: dict[str, Any]) -> list[str]:
    """Remediation command templates with the cluster's values, shell-quoted.

    Values come from Azure and are hostile: a cluster named `x; rm -rf ~` must stay one argument
    when an analyst pastes the command. Only the documented placeholders are replaced; other
    braces (JMESPath queries in --query) are left alone.
    """

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        raw = values.get(key)
        if key == "scope_id" and not raw:
            return SCOPE_ID_PLACEHOLDER
        return shlex.quote(str(raw if raw is not None else ""))

    return [PLACEHOLDER_RE.sub(value, template) for template in templates]


def needed_variables(templates: Iterable[str]) -> list[str]:
    """The shell variables the analyst must set before running these commands, in order.

    `{scope_id}` counts too: a cluster in no Private Link scope yet gets the analyst's scope, and
    the script checks every value before its first command, not half-way through the clusters."""
    templates = list(templates)
    if any("{scope_id}" in template for template in templates):
        templates.append(SCOPE_ID_PLACEHOLDER)
    return list(dict.fromkeys(name for template in templates for name in NEEDED_RE.findall(template)))


def comment_safe(text: str) -> str:
    """Text for a shell comment: no newline may end the comment early."""
    return CONTROL_CHARS_RE.sub("?", text)


def cluster_values(cluster: Any, scope_id: str | None = None) -> dict[str, Any]:
    """The remediation template values of a cluster; `scope_id` when its facts are not loaded."""
    if scope_id is None and "facts" in cluster.__dict__ and isinstance(cluster.facts, dict):
        scope_id = cluster.facts.get("private_link_scope_id")
    return {
        "name": cluster.name,
        "resource_group": cluster.resource_group,
        "subscription_id": cluster.subscription_id,
        "location": cluster.location,
        "id": cluster.arm_id,
        "scope_id": scope_id,
    }


def split_references(control: Control) -> tuple[list[Ref], list[Ref]]:
    """(as printed by Microsoft, closer fit) references of a control."""
    printed = [ref for ref in control.references if ref.kind == PRINTED]
    closer = [ref for ref in control.references if ref.kind != PRINTED]
    return printed, closer
