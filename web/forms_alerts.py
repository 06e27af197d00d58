"""The alert rule form and the subscription form. Rules are checked by posture/alerts/rules.py
clean_rule; its errors name the rule's fields, which are this form's field names."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from posture.alerts.kinds import clean_params
from posture.catalog.controls import SEVERITY_WEIGHTS
from posture.models import AlertRule, AlertSubscription, Scope
from web.forms import CONTROL_CHOICES, LinesField, PlainLabels

NOT_SUBSCRIBED = "none"


def kind_defaults() -> list[tuple[str, str, str]]:
    """(kind label, its parameters with their defaults as JSON, or "" and what it needs) for
    every kind, read from the kind's own check so a new kind documents itself here."""
    described = []
    for kind, label in AlertRule.Kind.choices:
        try:
            described.append((label, json.dumps(clean_params(kind, {})), ""))
        except ValidationError as exc:
            described.append((label, "", " ".join(exc.messages)))
    return described


class ParamsField(forms.CharField):
    """The kind's parameters as a JSON object."""

    widget = forms.Textarea(attrs={"rows": 3, "class": "mono"})

    def prepare_value(self, value: Any) -> Any:
        return json.dumps(value) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> dict[str, Any]:  # type: ignore[override]
        text = (super().to_python(value) or "").strip()
        if not text:
            return {}
        try:
            params = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Not JSON: {exc}.") from exc
        if not isinstance(params, dict):
            raise ValidationError('Give a JSON object, such as {"min_severity": "high"}.')
        return params


class TagsField(forms.CharField):
    """key=value lines (a key alone: any value) ⇄ [{"key", "value"}]. Tag values may hold commas."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(t["key"] if t.get("value") is None else f"{t['key']}={t['value']}" for t in value if isinstance(t, dict))
        return value

    def to_python(self, value: Any) -> list[dict[str, str | None]]:  # type: ignore[override]
        tags = []
        for line in (super().to_python(value) or "").splitlines():
            if line.strip():
                key, has_value, tag_value = line.partition("=")
                tags.append({"key": key.strip(), "value": tag_value.strip() if has_value else None})
        return tags


class AlertRuleForm(PlainLabels, forms.Form):
    name = forms.CharField(max_length=120, help_text="Shown in the subject of every message.")
    kind = forms.ChoiceField(choices=AlertRule.Kind.choices, label="Alert when")
    params = ParamsField(required=False, label="Parameters (JSON)")
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled", help_text="A disabled rule sends nothing.")
    scopes = forms.TypedMultipleChoiceField(
        required=False, coerce=int, widget=forms.CheckboxSelectMultiple, help_text="None ticked: every scope."
    )
    subscriptions = LinesField(required=False, help_text="Subscription GUIDs, one per line. Empty: any.")
    resource_groups = LinesField(required=False, label="Resource groups", help_text="One per line. Empty: any.")
    tags = TagsField(
        required=False, help_text="One per line: key=value, or a key alone for any value. A cluster with any of them matches. Empty: any."
    )
    controls = forms.MultipleChoiceField(
        required=False, choices=CONTROL_CHOICES, widget=forms.SelectMultiple(attrs={"size": 8}), help_text="None selected: every control."
    )
    severities = forms.MultipleChoiceField(
        required=False,
        choices=[(s, s.capitalize()) for s in SEVERITY_WEIGHTS],
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every severity.",
    )
    addresses = LinesField(
        required=False,
        label="Distribution addresses",
        help_text="Email addresses, one per line, that receive every message besides the subscribed users.",
    )

    def __init__(self, *args: Any, rule: AlertRule | None = None, **kwargs: Any) -> None:
        if rule is not None:
            kwargs.setdefault("initial", {field: getattr(rule, field) for field in self.base_fields})
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = list(Scope.objects.order_by("name").values_list("pk", "name"))
        self.kinds_described = kind_defaults()
        self.fields["params"].help_text = "A JSON object; leave it empty for the kind's defaults. Each kind's parameters are listed below."

    def rule_fields(self) -> dict[str, Any]:
        return dict(self.cleaned_data)

    def add_service_errors(self, error: ValidationError) -> None:
        """clean_rule's errors on the fields they name; anything else on the form."""
        for name, messages in error.message_dict.items() if hasattr(error, "error_dict") else [(None, error.messages)]:
            self.add_error(name if name in self.fields else None, messages)


class SubscriptionForm(PlainLabels, forms.Form):
    mode = forms.ChoiceField(
        choices=[*AlertSubscription.Mode.choices, (NOT_SUBSCRIBED, "Not subscribed")], widget=forms.RadioSelect, label="Send me"
    )
    digest_hour = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=[(h, f"{h:02d}:00 UTC") for h in range(24)], label="Digest at", initial=7
    )
