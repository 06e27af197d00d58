"""Entra ID sign-in: the start of the flow and Entra's redirect back. Both are reached without a
session, so they are exempt from LoginRequiredMiddleware."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from web.oidc.views import Authenticate, Callback

urlpatterns = [
    # The names mozilla-django-oidc reverses (OIDC_AUTHENTICATION_CALLBACK_URL's default).
    path("authenticate/", login_not_required(Authenticate.as_view()), name="oidc_authentication_init"),
    path("callback/", login_not_required(Callback.as_view()), name="oidc_authentication_callback"),
]
