"""Attestations and exceptions: lists, create forms, detail with version history, decisions.

Writes go through posture/governance.py; its ValidationError and PermissionDenied messages are
shown on the form or as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture import governance
from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.models import Cluster, GovernanceEvent, RiskException
from posture.read import governance as read
from web.forms import AttestationForm, DecisionForm, ExceptionForm
from web.views.common import APPROVE, ATTEST, REQUEST_EXCEPTION, VIEW, found_or_404, paginate

ATTESTATION_STATES = [("active", "Active"), ("expiring", "Expiring soon"), ("expired", "Expired"), ("revoked", "Revoked"), ("all", "All")]
EXCEPTION_STATES = [
    ("active", "Active"),
    ("expiring", "Expiring soon"),
    ("requested", "Requested"),
    ("approved", "Approved"),
    ("rejected", "Rejected"),
    ("revoked", "Revoked"),
    ("expired", "Expired"),
    ("all", "All"),
]
HISTORY_FIELDS = (
    "state",
    "control",
    "expires_at",
    "owner",
    "justification",
    "statement",
    "evidence_url",
    "decision_note",
    "revoked_at",
)


@dataclass(frozen=True)
class Record:
    """What the pages of one kind of governance record differ in. `kind` names the URLs
    (<kind>-detail), templates (posture/<kind>_list.html, _detail.html), history and covered results."""

    kind: str
    states: list[tuple[str, str]]
    listed: Callable[..., QuerySet[Any]]
    get: Callable[..., Any]
    list_context: Callable[[], dict[str, Any]]
    detail_context: Callable[[HttpRequest, Any], dict[str, Any]]
    form: type[AttestationForm] | type[ExceptionForm]
    create: Callable[..., Any]
    create_permission: str
    created: str  # the message once created; {control} is the record's control


RECORDS = {
    "attestation": Record(
        kind="attestation",
        states=ATTESTATION_STATES,
        listed=read.attestation_list,
        get=read.attestation_get,
        list_context=lambda: {"now_value": timezone.now()},
        detail_context=lambda request, item: {"now_value": timezone.now()},
        form=AttestationForm,
        create=governance.attestation_create,
        create_permission=ATTEST,
        created="Attestation of {control} recorded; the clusters it covers are being re-evaluated.",
    ),
    "exception": Record(
        kind="exception",
        states=EXCEPTION_STATES,
        listed=read.exception_list,
        get=read.exception_get,
        list_context=lambda: {"audit": governance.exception_audit(), "four_eyes": settings.ARC_EXCEPTION_FOUR_EYES},
        detail_context=lambda request, item: {
            "decision_form": DecisionForm(),
            "can_withdraw": governance.may_revoke(item, request.user),
            "four_eyes": settings.ARC_EXCEPTION_FOUR_EYES,
        },
        form=ExceptionForm,
        create=governance.exception_request,
        create_permission=REQUEST_EXCEPTION,
        created="Exception for {control} requested; an administrator must approve it.",
    ),
}


def _versions(events: list[GovernanceEvent]) -> list[dict[str, Any]]:
    """Each event with the fields it changed compared with the version before it."""
    versions, before = [], {}
    for event in events:
        changed = [(f, before.get(f), event.data.get(f)) for f in HISTORY_FIELDS if event.data.get(f) != before.get(f)]
        versions.append({"event": event, "changed": changed})
        before = event.data
    return versions


def _initial(request: HttpRequest) -> dict[str, Any]:
    """Prefill from a cluster's control row (?control=…&cluster=<pk>) or a selector link."""
    initial: dict[str, Any] = {}
    if request.GET.get("control") in CONTROLS_BY_ID:
        initial["control"] = request.GET["control"]
    cluster_pk = request.GET.get("cluster", "")
    cluster = Cluster.objects.filter(pk=int(cluster_pk)).only("arm_id").first() if cluster_pk.isdecimal() and cluster_pk.isascii() else None
    if cluster is not None:
        initial.update(target="cluster", cluster=cluster.arm_id)
    elif request.GET.get("subscription_id"):
        initial.update(target="subscription", subscription_id=request.GET["subscription_id"])
    return initial


@require_safe
@permission_required(VIEW, raise_exception=True)
def record_list(request: HttpRequest, kind: str) -> HttpResponse:
    record = RECORDS[kind]
    state = request.GET.get("state", "active")
    control = request.GET.get("control", "")
    items = record.listed(state="" if state == "all" else state, control=control if control in CONTROLS_BY_ID else "")
    context = {"page": paginate(request, items), "state": state, "states": record.states, "control": control, "controls": CONTROLS}
    return render(request, f"posture/{kind}_list.html", context | record.list_context())


@require_safe
@permission_required(VIEW, raise_exception=True)
def record_detail(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    record = RECORDS[kind]
    item = found_or_404(record.get(pk=pk), kind)
    context = {
        "item": item,
        "control": CONTROLS_BY_ID.get(item.control),
        "versions": _versions(read.governance_history(kind=kind, object_id=item.pk)),
        "covered": read.covered_results(field_name=kind, object_id=item.pk),
    }
    return render(request, f"posture/{kind}_detail.html", context | record.detail_context(request, item))


@require_http_methods(["GET", "HEAD", "POST"])
def record_create(request: HttpRequest, kind: str) -> HttpResponse:
    record = RECORDS[kind]
    if not request.user.has_perm(record.create_permission):
        raise PermissionDenied
    form = record.form(request.POST or None, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            item = record.create(user=request.user, **form.record_fields())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, record.created.format(control=item.control))
            return redirect(f"{kind}-detail", pk=item.pk)
    return render(request, "posture/governance_form.html", {"form": form, "kind": kind})


@require_POST
@permission_required(ATTEST, raise_exception=True)
def attestation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    attestation = found_or_404(read.attestation_get(pk=pk), "attestation")
    governance.attestation_revoke(attestation=attestation, user=request.user)
    messages.success(request, "Attestation revoked; the clusters it covered are being re-evaluated.")
    return redirect("attestation-detail", pk=attestation.pk)


def _decide(request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
    exception = found_or_404(read.exception_get(pk=pk), "exception")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("exception-detail", pk=exception.pk)
    note = form.cleaned_data["note"]
    try:
        action(exception=exception, user=request.user, note=note)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    else:
        messages.success(request, done)
    return redirect("exception-detail", pk=exception.pk)


@require_POST
@permission_required(APPROVE, raise_exception=True)
def exception_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, governance.exception_approve, "Exception approved; the clusters it covers are being re-evaluated.")


@require_POST
@permission_required(APPROVE, raise_exception=True)
def exception_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, governance.exception_reject, "Exception rejected.")


@require_POST
@permission_required(REQUEST_EXCEPTION, raise_exception=True)
def exception_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    exception = found_or_404(read.exception_get(pk=pk), "exception")
    # Refused outright here when plainly not theirs; the service judges again on the locked row.
    if exception.state in RiskException.LIVE_STATES and not governance.may_revoke(exception, request.user):
        raise PermissionDenied(governance.REVOKE_REFUSED)
    return _decide(request, pk, governance.exception_revoke, "Exception revoked; the clusters it covered are being re-evaluated.")
