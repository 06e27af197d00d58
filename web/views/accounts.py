from __future__ import annotations

from typing import Any

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


class LoginView(auth_views.LoginView):
    # Failures are counted and lock-outs enforced by django-axes (its backend and middleware).
    form_class = AuthenticationForm
    redirect_authenticated_user = True


def locked_out(request: HttpRequest, response: HttpResponse | None = None, credentials: dict[str, Any] | None = None) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in (AXES_LOCKOUT_CALLABLE): the sign-in page, saying why."""
    context = {"form": AuthenticationForm(request), "locked": LOCKED, "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change.html"
    success_url = reverse_lazy("overview")

    def form_valid(self, form) -> HttpResponse:  # type: ignore[no-untyped-def]
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)


password_change = permission_required(VIEW, raise_exception=True)(PasswordChangeView.as_view())
