"""Alerts: the rules (analysts and admins change them, everyone subscribes), a rule's preview,
and the history of notifications (admins see all of them, everyone else their own).

Writes go through posture/alerts/rules.py and history.py; their ValidationError messages are
shown next to the fields they name, or as a message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models import Count, F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture.alerts import history
from posture.alerts.preview import preview_rule
from posture.alerts.rules import clean_rule, rule_create, rule_delete, rule_update, subscribe, unsubscribe
from posture.alerts.text import item_severity
from posture.models import AlertRule, AlertSubscription, Notification, Scope
from web.forms_alerts import NOT_SUBSCRIBED, AlertRuleForm, SubscriptionForm
from web.views.common import MANAGE_USERS, VIEW, paginate

MANAGE_ALERTS = "posture.manage_alerts"


def limits(rule: AlertRule, scope_names: dict[int, str]) -> list[str]:
    """The rule's limits, one short phrase each (none: the rule covers everything)."""
    parts = []
    if rule.scopes:
        parts.append("scopes " + ", ".join(scope_names.get(pk, f"#{pk}") for pk in rule.scopes))
    if rule.subscriptions:
        parts.append(f"{len(rule.subscriptions)} subscription{'s' if len(rule.subscriptions) > 1 else ''}")
    if rule.resource_groups:
        parts.append("resource groups " + ", ".join(rule.resource_groups))
    if rule.tags:
        parts.append("tags " + ", ".join(t["key"] if t["value"] is None else f"{t['key']}={t['value']}" for t in rule.tags))
    for field in ("controls", "severities"):
        if getattr(rule, field):
            parts.append(f"{field} " + ", ".join(getattr(rule, field)))
    return parts


def _rule_rows(rules: Any, user: Any) -> None:
    """Attach what the list and detail show besides the rule's own fields."""
    scope_names = dict(Scope.objects.values_list("pk", "name"))
    mine = {s.rule_id: s for s in AlertSubscription.objects.filter(user=user, rule__in=[r.pk for r in rules])}
    for rule in rules:
        rule.limits = limits(rule, scope_names)
        rule.mine = mine.get(rule.pk)


def _subscription_form(rule: AlertRule) -> SubscriptionForm:
    mine = rule.mine
    if mine is None:
        return SubscriptionForm(initial={"mode": NOT_SUBSCRIBED}, prefix=f"r{rule.pk}")
    return SubscriptionForm(
        initial={"mode": mine.mode, "digest_hour": mine.digest_hour if mine.digest_hour is not None else 7}, prefix=f"r{rule.pk}"
    )


@require_safe
@permission_required(VIEW, raise_exception=True)
def rule_list(request: HttpRequest) -> HttpResponse:
    page = paginate(request, AlertRule.objects.annotate(subscriber_count=Count("subscribers")).order_by("name", "pk"))
    _rule_rows(page.object_list, request.user)
    rows = [(rule, _subscription_form(rule)) for rule in page.object_list]
    return render(request, "posture/alert_rule_list.html", {"page": page, "rows": rows})


def _rule(pk: int) -> AlertRule:
    return get_object_or_404(AlertRule.objects.annotate(subscriber_count=Count("subscribers")), pk=pk)


@require_safe
@permission_required(VIEW, raise_exception=True)
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule(pk)
    _rule_rows([rule], request.user)
    recent = history.notifications_for(request.user, rule=rule.pk).defer("changes")[:10]
    # Addresses that unsubscribed by their messages' link receive nothing, whatever the rule lists.
    opted_out = dict(rule.opt_outs.values_list("address", "created_at"))
    addresses = [(address, opted_out.get(address.lower())) for address in rule.addresses]
    # A rule that matches nothing says so, rather than looking like one whose mail is lost.
    last_match = rule.triggers.defer("items").order_by("-created_at").first()
    context = {
        "rule": rule,
        "subscription_form": _subscription_form(rule),
        "recent": recent,
        "addresses": addresses,
        "last_match": last_match,
    }
    return render(request, "posture/alert_rule_detail.html", context)


def _rule_form(request: HttpRequest, rule: AlertRule | None) -> HttpResponse:
    """The create and edit form: Save writes the rule, Preview shows what the posted (unsaved)
    rule would have sent for the last scan."""
    form = AlertRuleForm(request.POST or None, rule=rule)
    previews = None
    if request.method == "POST" and form.is_valid():
        try:
            if request.POST.get("action") == "preview":
                candidate = AlertRule(pk=rule.pk if rule else None, **form.rule_fields())
                clean_rule(candidate)
                previews = preview_rule(candidate)
            elif rule is None:
                saved = rule_create(user=request.user, **form.rule_fields())
            else:
                saved = rule_update(rule=rule, **form.rule_fields())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            if previews is None:
                messages.success(request, f"Alert rule {saved.name} {'created' if rule is None else 'saved'}.")
                return redirect("alert-rule-detail", pk=saved.pk)
    return render(request, "posture/alert_rule_form.html", {"form": form, "rule": rule, "previews": previews})


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(MANAGE_ALERTS, raise_exception=True)
def rule_create_view(request: HttpRequest) -> HttpResponse:
    return _rule_form(request, None)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(MANAGE_ALERTS, raise_exception=True)
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _rule_form(request, get_object_or_404(AlertRule, pk=pk))


@require_POST
@permission_required(MANAGE_ALERTS, raise_exception=True)
def rule_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    try:
        rule_update(rule=rule, enabled=enabled)
    except ValidationError as exc:
        messages.error(request, f"Alert rule not changed: {' '.join(exc.messages)} Correct it in its edit form.")
    else:
        messages.success(request, f"Alert rule {rule.name} {'enabled' if enabled else 'disabled: it sends nothing until enabled again'}.")
    return redirect("alert-rule-detail", pk=rule.pk)


@require_POST
@permission_required(MANAGE_ALERTS, raise_exception=True)
def rule_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    rule_delete(rule=rule)
    messages.success(request, f"Alert rule {rule.name} deleted; the messages it sent stay in the history.")
    return redirect("alert-rule-list")


@require_POST
@permission_required(VIEW, raise_exception=True)
def rule_subscription(request: HttpRequest, pk: int) -> HttpResponse:
    """Subscribe the signed-in user (at once or as a daily digest), or unsubscribe them."""
    rule = get_object_or_404(AlertRule, pk=pk)
    form = SubscriptionForm(request.POST, prefix=f"r{rule.pk}")
    back = redirect("alert-rule-list") if request.POST.get("back") == "list" else redirect("alert-rule-detail", pk=rule.pk)
    if not form.is_valid():
        messages.error(request, "Subscription not changed: " + " ".join(e for errors in form.errors.values() for e in errors))
        return back
    mode, hour = form.cleaned_data["mode"], form.cleaned_data["digest_hour"]
    if mode == NOT_SUBSCRIBED:
        unsubscribe(user=request.user, rule=rule)  # and what waits for their digest
        messages.success(request, f"You are not subscribed to {rule.name}.")
        return back
    try:
        subscription = subscribe(user=request.user, rule=rule, mode=mode, digest_hour=hour)
    except ValidationError as exc:
        messages.error(request, "Subscription not changed: " + " ".join(exc.messages))
        return back
    when = "as they happen" if subscription.mode == AlertSubscription.Mode.IMMEDIATE else f"in a daily digest at {hour:02d}:00 UTC"
    messages.success(request, f"You receive {rule.name} {when}.")
    if not (request.user.email or "").strip():
        messages.warning(request, "Your account has no email address, so nothing can reach you: ask an administrator to add one.")
    return back


@require_safe
@permission_required(MANAGE_ALERTS, raise_exception=True)
def rule_preview(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, pk=pk)
    return render(request, "posture/alert_rule_preview.html", {"rule": rule, "previews": preview_rule(rule)})


# --- history ------------------------------------------------------------------------------------
@require_safe
@permission_required(VIEW, raise_exception=True)
def notification_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    state = state if state in Notification.State.values else ""
    rule = request.GET.get("rule", "")
    rule_id = int(rule) if rule.isdecimal() and rule.isascii() else None
    # The change lists can be long: the page shows the count stored with each row, never the list.
    mine = history.notifications_for(request.user, state=state, rule=rule_id)
    notifications = mine.defer("changes").annotate(changes_count=F("item_count"))
    context = {
        "page": paginate(request, notifications),
        "retry_hours": settings.ARC_ALERT_RETRY_HOURS,
        "everything": history.sees_everything(request.user),
        "states": Notification.State.choices,
        "state": state,
        "rules": AlertRule.objects.order_by("name").values_list("pk", "name"),
        "rule": rule_id,
    }
    return render(request, "posture/notification_list.html", context)


def _notification(request: HttpRequest, pk: Any) -> Notification:
    """The notification if the user may see it; another user's is a 404, as a missing one is."""
    notification = history.notifications_for(request.user).filter(pk=pk).first()
    if notification is None:
        raise Http404("No such notification")
    return notification


@require_safe
@permission_required(VIEW, raise_exception=True)
def notification_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    notification = _notification(request, pk)
    items = [
        item | {"severity": item_severity(item)}
        for item in notification.items()
        if isinstance(item, dict)
    ]
    resends = Notification.objects.filter(source__startswith=f"resend:{notification.pk}:").order_by("created_at")
    # A digest's items each name the rule they came from.
    by_rule = any(item.get("rule") for item in items)
    context = {"notification": notification, "page": paginate(request, items), "resends": resends, "by_rule": by_rule}
    return render(request, "posture/notification_detail.html", context)


@require_POST
@permission_required(MANAGE_USERS, raise_exception=True)
def notification_resend(request: HttpRequest, pk: Any) -> HttpResponse:
    notification = _notification(request, pk)
    if notification.state == Notification.State.UNCONFIRMED and request.POST.get("confirm") != "yes":
        messages.error(request, "Not resent: tick the box to confirm that the recipient may receive this message twice.")
        return redirect("notification-detail", pk=notification.pk)
    try:
        new = history.resend(notification=notification)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("notification-detail", pk=notification.pk)
    messages.success(request, f"Resent as a new message to {new.recipient} ({new.message_id}); this one keeps its own history.")
    return redirect("notification-detail", pk=new.pk)
