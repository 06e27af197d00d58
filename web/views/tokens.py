"""API tokens: each user lists, creates and revokes their own (admins see and revoke everyone's).
A new token is rendered once, never redirected to: only its digest is stored (posture/tokens.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture import tokens
from posture.models import ApiToken
from web.views.common import MANAGE_USERS, VIEW, found_or_404, paginate


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “SIEM pull”.")
    scopes = forms.MultipleChoiceField(
        required=False,
        choices=list(tokens.SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: everything your role allows.",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        longest = tokens.max_days()  # ARC_API_TOKEN_MAX_DAYS, read when the form is made
        self.fields["days"] = forms.IntegerField(
            min_value=1, max_value=longest, initial=min(90, longest), label="Valid for (days)", help_text=f"At most {longest} days."
        )
        self.order_fields(["name", "days", "scopes"])


def _visible(request: HttpRequest) -> object:
    """The tokens the user may see: their own, or everyone's for an admin."""
    shown = ApiToken.objects.select_related("user").order_by("-created_at", "-pk")
    return shown if request.user.has_perm(MANAGE_USERS) else shown.filter(user=request.user)


@require_safe
@permission_required(VIEW, raise_exception=True)
def token_list(request: HttpRequest) -> HttpResponse:
    page = paginate(request, _visible(request))
    context = {"page": page, "now": timezone.now(), "everyone": request.user.has_perm(MANAGE_USERS)}
    return render(request, "tokens/token_list.html", context)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(VIEW, raise_exception=True)
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, raw = tokens.issue(request.user, data["name"], days=data["days"], scopes=data["scopes"])
        except tokens.TokenError as exc:
            form.add_error(None, str(exc))
        else:
            # Rendered, not redirected: the raw token is shown this once and stored nowhere.
            return render(request, "tokens/token_created.html", {"token": token, "raw": raw})
    return render(request, "tokens/token_form.html", {"form": form})


@require_POST
@permission_required(VIEW, raise_exception=True)
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = found_or_404(_visible(request).filter(pk=pk).first(), "token")  # type: ignore[attr-defined]
    if tokens.revoke(token):
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked: it no longer works.")
    else:
        messages.info(request, f"Token “{token.name}” was revoked already.")
    return redirect("token-list")
