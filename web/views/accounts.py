from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy

from web.views.common import VIEW

LOCKED = (
    "Too many failed sign-ins for this account from your address. "
    "Wait a few minutes and try again, or ask an administrator to reset your password."
)


def sign_in_options(request: HttpRequest) -> dict[str, Any]:
    """What the sign-in page offers: Entra ID when configured, and the password form unless
    LOCAL_LOGIN=false (then only behind ?break-glass=1, for ARC_BREAK_GLASS_USER)."""
    break_glass = not settings.LOCAL_LOGIN and bool(settings.ARC_BREAK_GLASS_USER) and "break-glass" in request.GET
    return {
        "oidc_enabled": settings.OIDC_ENABLED,
        "password_form": settings.LOCAL_LOGIN or break_glass,
        "break_glass": break_glass,
    }


class LoginView(auth_views.LoginView):
    # Failures are counted and lock-outs enforced by django-axes (its backend and middleware).
    # With LOCAL_LOGIN=false the password backend itself refuses everyone but the break-glass user
    # (web/oidc/backends.py); hiding the form is only the page's side of it.
    form_class = AuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), **sign_in_options(self.request)}


def locked_out(request: HttpRequest, response: HttpResponse | None = None, credentials: dict[str, Any] | None = None) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in (AXES_LOCKOUT_CALLABLE): the sign-in page, saying why."""
    context = {"form": AuthenticationForm(request), "locked": LOCKED, "next": request.POST.get("next", ""), **sign_in_options(request)}
    return render(request, "registration/login.html", context, status=429)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change.html"
    success_url = reverse_lazy("overview")

    def form_valid(self, form) -> HttpResponse:  # type: ignore[no-untyped-def]
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)


password_change = permission_required(VIEW, raise_exception=True)(PasswordChangeView.as_view())
