"""Scopes: the Azure tenants, subscriptions and management groups to scan. Saved through
posture/scopes.py scope_save, which validates and keeps beat's schedule in step."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from posture.cron import cron_problem
from posture.models import Scope
from posture.read.fleet import fleet_state
from posture.scans.schedules import unrunnable_schedules
from posture.scopes import scope_save
from web.forms import ScopeForm
from web.views.common import MANAGE_SCOPES, VIEW


@require_safe
@permission_required(VIEW, raise_exception=True)
def scope_list(request: HttpRequest) -> HttpResponse:
    state = fleet_state(with_scans=True)
    snapshots = {s.scope_id: s for s in state.latest.snapshots}
    problems = dict(unrunnable_schedules(state.scopes))
    rows = [(scope, snapshots.get(scope.pk), state.last_scans.get(scope.pk), problems.get(scope)) for scope in state.scopes]
    return render(request, "posture/scope_list.html", {"rows": rows})


def _save(request: HttpRequest, form: ScopeForm, verb: str) -> HttpResponse | None:
    if not form.is_valid():
        return None
    try:
        scope = scope_save(form.instance)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    messages.success(request, f"Scope {scope.name} {verb}; its schedule is {scope.schedule} (UTC).")
    return redirect("scope-list")


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(MANAGE_SCOPES, raise_exception=True)
def scope_create(request: HttpRequest) -> HttpResponse:
    form = ScopeForm(request.POST or None)
    if request.method == "POST" and (response := _save(request, form, "added")):
        return response
    return render(request, "posture/scope_form.html", {"form": form, "scope": None})


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(MANAGE_SCOPES, raise_exception=True)
def scope_edit(request: HttpRequest, name: str) -> HttpResponse:
    scope = get_object_or_404(Scope, name=name)
    form = ScopeForm(request.POST or None, instance=scope)
    if request.method == "POST" and (response := _save(request, form, "saved")):
        return response
    # A row saved before schedules were checked as beat checks them: say why it never scans.
    context = {"form": form, "scope": scope, "schedule_problem": cron_problem(scope.schedule)}
    return render(request, "posture/scope_form.html", context)
