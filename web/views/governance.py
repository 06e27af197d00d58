"""Attestations and exceptions: lists, create forms, detail with version history, decisions.

Writes go through posture/governance.py; its ValidationError and PermissionDenied messages are
shown on the form or as a message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture import governance, selectors
from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.models import Attestation, Cluster, GovernanceEvent, RiskException
from web.forms import AttestationForm, DecisionForm, ExceptionForm
from web.views.common import APPROVE, ATTEST, REQUEST_EXCEPTION, VIEW, paginate

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


def _get_attestation_or_404(pk: int) -> Attestation:
    attestation = selectors.attestation_get(pk=pk)
    if attestation is None:
        raise Http404("No such attestation")
    return attestation


def _get_exception_or_404(pk: int) -> RiskException:
    exception = selectors.exception_get(pk=pk)
    if exception is None:
        raise Http404("No such exception")
    return exception


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


# --- attestations ----------------------------------------------------------------------------
@require_safe
@permission_required(VIEW, raise_exception=True)
def attestation_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "active")
    control = request.GET.get("control", "")
    items = selectors.attestation_list(state="" if state == "all" else state, control=control if control in CONTROLS_BY_ID else "")
    context = {
        "page": paginate(request, items),
        "state": state,
        "states": ATTESTATION_STATES,
        "control": control,
        "controls": CONTROLS,
        "now_value": timezone.now(),
    }
    return render(request, "posture/attestation_list.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(ATTEST, raise_exception=True)
def attestation_create(request: HttpRequest) -> HttpResponse:
    form = AttestationForm(request.POST or None, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            attestation = governance.attestation_create(
                user=request.user,
                control=form.cleaned_data["control"],
                statement=form.cleaned_data["statement"],
                evidence_url=form.cleaned_data["evidence_url"],
                expires_at=form.expires_at(),
                **form.target_fields(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Attestation of {attestation.control} recorded; the clusters it covers are being re-evaluated.")
            return redirect("attestation-detail", pk=attestation.pk)
    return render(request, "posture/governance_form.html", {"form": form, "kind": "attestation"})


@require_safe
@permission_required(VIEW, raise_exception=True)
def attestation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    attestation = _get_attestation_or_404(pk)
    context = {
        "item": attestation,
        "control": CONTROLS_BY_ID.get(attestation.control),
        "versions": _versions(selectors.governance_history(kind="attestation", object_id=attestation.pk)),
        "covered": selectors.covered_results(field_name="attestation", object_id=attestation.pk),
        "now_value": timezone.now(),
    }
    return render(request, "posture/attestation_detail.html", context)


@require_POST
@permission_required(ATTEST, raise_exception=True)
def attestation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    attestation = _get_attestation_or_404(pk)
    governance.attestation_revoke(attestation=attestation, user=request.user)
    messages.success(request, "Attestation revoked; the clusters it covered are being re-evaluated.")
    return redirect("attestation-detail", pk=attestation.pk)


# --- exceptions ------------------------------------------------------------------------------
@require_safe
@permission_required(VIEW, raise_exception=True)
def exception_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "active")
    control = request.GET.get("control", "")
    items = selectors.exception_list(state="" if state == "all" else state, control=control if control in CONTROLS_BY_ID else "")
    context = {
        "page": paginate(request, items),
        "state": state,
        "states": EXCEPTION_STATES,
        "control": control,
        "controls": CONTROLS,
        "audit": governance.exception_audit(),
        "four_eyes": settings.ARC_EXCEPTION_FOUR_EYES,
    }
    return render(request, "posture/exception_list.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(REQUEST_EXCEPTION, raise_exception=True)
def exception_create(request: HttpRequest) -> HttpResponse:
    form = ExceptionForm(request.POST or None, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            exception = governance.exception_request(
                user=request.user,
                control=form.cleaned_data["control"],
                justification=form.cleaned_data["justification"],
                owner=form.cleaned_data["owner"],
                expires_at=form.expires_at(),
                **form.target_fields(),
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Exception for {exception.control} requested; an administrator must approve it.")
            return redirect("exception-detail", pk=exception.pk)
    return render(request, "posture/governance_form.html", {"form": form, "kind": "exception"})


@require_safe
@permission_required(VIEW, raise_exception=True)
def exception_detail(request: HttpRequest, pk: int) -> HttpResponse:
    exception = _get_exception_or_404(pk)
    context = {
        "item": exception,
        "control": CONTROLS_BY_ID.get(exception.control),
        "versions": _versions(selectors.governance_history(kind="exception", object_id=exception.pk)),
        "covered": selectors.covered_results(field_name="exception", object_id=exception.pk),
        "decision_form": DecisionForm(),
        "can_withdraw": governance.may_revoke(exception, request.user),
        "four_eyes": settings.ARC_EXCEPTION_FOUR_EYES,
    }
    return render(request, "posture/exception_detail.html", context)


def _decide(request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
    exception = _get_exception_or_404(pk)
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
    exception = _get_exception_or_404(pk)
    # Refused outright here when plainly not theirs; the service judges again on the locked row.
    if exception.state in RiskException.LIVE_STATES and not governance.may_revoke(exception, request.user):
        raise PermissionDenied(governance.REVOKE_REFUSED)
    return _decide(request, pk, governance.exception_revoke, "Exception revoked; the clusters it covered are being re-evaluated.")
