"""One-click unsubscribe from alert mail (RFC 8058), without a sign-in: the signed token in the
link is the authority (posture/alerts/unsubscribe.py).

GET only shows what the link would do, with a button: mail scanners follow links, and a GET
must never unsubscribe. POST unsubscribes when its body says `List-Unsubscribe=One-Click`, as a
mail client's one-click POST does (RFC 8058 §3.2) and as the page's own button does.

CSRF: the view is exempt. CSRF protects the authority a browser adds on its own (a session
cookie); this view uses none, and the mail client's POST carries no cookie or CSRF token. A
forged POST would need the token, which only the recipient has, and with it could unsubscribe
per RFC 8058 anyway.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from posture.alerts import unsubscribe as unsubscribing

ONE_CLICK = "One-Click"  # the value of List-Unsubscribe in an RFC 8058 POST body


@login_not_required
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        asked = unsubscribing.read(token)
    except unsubscribing.BadToken as exc:
        return _refused(request, f"This unsubscribe link is not valid: {exc}")
    if request.method == "POST":
        if request.POST.get("List-Unsubscribe") != ONE_CLICK:
            return _refused(request, "An unsubscribe request must say List-Unsubscribe=One-Click (RFC 8058).")
        unsubscribing.apply(asked)
        return render(request, "posture/unsubscribe.html", {"asked": asked, "done": True})
    return render(request, "posture/unsubscribe.html", {"asked": asked, "done": False, "one_click": ONE_CLICK})


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "posture/unsubscribe_refused.html", {"reason": reason}, status=400)
