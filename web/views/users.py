"""Users and their roles (admin: manage_users). Passwords are generated and shown once."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture.roles import assign_role, user_role
from web.forms import RoleForm, UserCreateForm
from web.views.common import MANAGE_USERS, found_or_404, paginate


@require_safe
@permission_required(MANAGE_USERS, raise_exception=True)
def user_list(request: HttpRequest) -> HttpResponse:
    users = get_user_model().objects.prefetch_related("groups").select_related("external_identity").order_by("username")
    page = paginate(request, users)
    rows = [(user, user_role(user)) for user in page]
    return render(request, "posture/user_list.html", {"page": page, "rows": rows, "role_form": RoleForm()})


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(MANAGE_USERS, raise_exception=True)
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        password = secrets.token_urlsafe(18)
        user = get_user_model().objects.create_user(
            username=form.cleaned_data["username"], email=form.cleaned_data["email"], password=password
        )
        assign_role(user, form.cleaned_data["role"])
        # Rendered, not redirected: the password is shown this once and stored nowhere in clear.
        return render(request, "posture/user_created.html", {"new_user": user, "password": password, "role": form.cleaned_data["role"]})
    return render(request, "posture/user_form.html", {"form": form})


@require_POST
@permission_required(MANAGE_USERS, raise_exception=True)
def user_role_change(request: HttpRequest, pk: int) -> HttpResponse:
    user = found_or_404(get_user_model().objects.filter(pk=pk).first(), "user")
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose viewer, analyst or admin.")
    elif user.pk == request.user.pk:
        messages.error(request, "You cannot change your own role; ask another administrator.")
    else:
        assign_role(user, form.cleaned_data["role"])
        messages.success(request, f"{user.username} is now {form.cleaned_data['role']}.")
    return redirect("user-list")


@require_POST
@permission_required(MANAGE_USERS, raise_exception=True)
def user_set_active(request: HttpRequest, pk: int) -> HttpResponse:
    user = found_or_404(get_user_model().objects.filter(pk=pk).first(), "user")
    active = request.POST.get("active") == "1"
    if user.pk == request.user.pk:
        messages.error(request, "You cannot deactivate your own account.")
    else:
        user.is_active = active
        user.save(update_fields=["is_active"])
        messages.success(request, f"{user.username} {'reactivated' if active else 'deactivated'}.")
    return redirect("user-list")
