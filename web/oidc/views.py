"""The two halves of the OpenID Connect flow (mozilla-django-oidc's views), refusing with a 403
page that says why instead of a redirect or a 500."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from web.throttle import client_address

log = logging.getLogger(__name__)

REASONS = {
    "state": "This sign-in did not start here, or its link was already used. Start again from the sign-in page.",
    "code": "Entra ID did not accept the sign-in code: it was already used, has expired or was meant for another app.",
    "token": "Entra ID's answer could not be verified (its signature, audience, issuer, nonce or validity period is wrong).",
    "tenant": "Your account belongs to another Entra ID tenant than the one this installation accepts.",
    "no_role": (
        "Your account has no Arc Posture role. Ask an administrator to assign you the Viewer, Analyst or Admin "
        "app role (or a mapped group) in Entra ID, then sign in again."
    ),
    "idp_error": "Entra ID did not sign you in.",
    "inactive": "Your Arc Posture account is disabled. Ask an administrator to enable it.",
    "unavailable": "Entra ID could not be reached. Try again in a few minutes.",
}


def refused(request: HttpRequest, reason: str) -> HttpResponse:
    """The refusal page. A session open before stays: a forged link must not sign anyone out."""
    return render(request, "oidc/refused.html", {"reason": REASONS.get(reason, REASONS["token"])}, status=403)


class Authenticate(OIDCAuthenticationRequestView):
    """Redirects to Entra's authorize endpoint with state, nonce and a PKCE challenge."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Sign-in with Entra ID is not configured.")
        return super().get(request)


class Callback(OIDCAuthenticationCallbackView):
    """Where Entra sends the browser back with a code (or an error) and the state."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("Sign-in with Entra ID is not configured.")
        where = client_address(request)
        state = request.GET.get("state", "")
        states = request.session.get("oidc_states", {})
        if request.GET.get("error"):
            # Hostile until proven otherwise: logged with %r (no line breaks), never shown.
            error, description = request.GET["error"][:100], request.GET.get("error_description", "")[:300]
            log.warning("Entra ID returned an error to %s: %r %r", where, error, description)
            if state in states:  # spent, as after a success; nobody is signed out by a forged link
                del states[state]
                request.session.modified = True
            return refused(request, "idp_error")
        if "code" not in request.GET or state not in states:
            # A forged or replayed callback: the state was never issued to this session or is spent.
            log.warning("Entra ID callback with an unknown or spent state from %s", where)
            return refused(request, "state")
        try:
            return super().get(request)
        except SuspiciousOperation as error:  # mozilla-django-oidc's own state checks
            log.warning("Entra ID callback refused from %s: %r", where, str(error))
            return refused(request, "state")

    def login_failure(self) -> HttpResponse:
        user = getattr(self, "user", None)
        reason = getattr(self.request, "oidc_refusal", None) or ("inactive" if user is not None and not user.is_active else "token")
        if reason == "inactive":
            log.warning("Entra ID sign-in refused for inactive user %s", user.pk)
        return refused(self.request, reason)
