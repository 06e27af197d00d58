"""Alerts: the outbox as admins see it (every notification and its delivery state). The rules and
subscriptions pages come later (issue 16)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from posture.models import Notification
from web.views.common import MANAGE_USERS, paginate


@require_safe
@permission_required(MANAGE_USERS, raise_exception=True)
def notification_list(request: HttpRequest) -> HttpResponse:
    # The change lists can be long: the page shows the count stored with each row, never the list.
    notifications = Notification.objects.defer("changes").annotate(changes_count=F("item_count")).order_by("-created_at", "recipient")
    context = {"page": paginate(request, notifications), "retry_hours": settings.ARC_ALERT_RETRY_HOURS}
    return render(request, "posture/notification_list.html", context)
