from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from posture.catalog.controls import CONTROLS
from posture.clouds import cloud_choices, credential_choices, credential_names, get_cloud
from posture.models import Cluster, NetworkPath, Scope
from posture.normalize import CONNECTIVITY_STATUSES
from posture.read.clusters import CLUSTER_SORTS
from posture.read.fleet import GRADES
from posture.roles import ROLE_PERMISSIONS
from web.paging import DEFAULT_PAGE_SIZE, PAGE_SIZES

CONTROL_CHOICES = [(c.id, f"{c.id} · {c.title}") for c in CONTROLS]


class PlainLabels:
    """Labels without Django's trailing colon."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]


def _blank(choices: list[tuple[str, str]], label: str = "Any") -> list[tuple[str, str]]:
    return [("", label), *choices]


# --- cluster list ----------------------------------------------------------------------------
SORT_LABELS = {
    "name": "Name",
    "score": "Score",
    "grade": "Grade",
    "coverage": "Coverage",
    "failing": "Failing controls",
    "last_connectivity_at": "Last contact",
}
SORT_CHOICES = [
    (key, f"{SORT_LABELS[name]}, {order}") for name in CLUSTER_SORTS for key, order in ((name, "ascending"), ("-" + name, "descending"))
]


class ClusterFilterForm(forms.Form):
    """The cluster list's filters, read from the query string so a view can be bookmarked."""

    q = forms.CharField(required=False, max_length=260, label="Name contains", widget=forms.TextInput(attrs={"type": "search"}))
    scope = forms.ChoiceField(required=False)
    subscription = forms.CharField(required=False, max_length=36, label="Subscription ID")
    resource_group = forms.CharField(required=False, max_length=90, label="Resource group")
    location = forms.ChoiceField(required=False)
    distribution = forms.ChoiceField(required=False)
    infrastructure = forms.ChoiceField(required=False)
    grade = forms.ChoiceField(required=False, choices=_blank([(g, g if g != "-" else "No grade") for g in GRADES]))
    connectivity = forms.ChoiceField(required=False, choices=_blank([(s, s) for s in sorted(CONNECTIVITY_STATUSES)]))
    network_path = forms.ChoiceField(required=False, label="Network path", choices=_blank(list(NetworkPath.choices)))
    control = forms.ChoiceField(required=False, label="Failing control", choices=_blank([(c.id, c.id) for c in CONTROLS]))
    tag = forms.CharField(required=False, max_length=1025, label="Tag (key or key=value)")
    removed = forms.BooleanField(required=False, label="Include removed clusters")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
    per_page = forms.TypedChoiceField(required=False, label="Per page", coerce=int, choices=[(n, n) for n in PAGE_SIZES])

    def __init__(self, *args: Any, options: dict[str, list[str]], scopes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("location", "distribution", "infrastructure"):
            values = options.get(name, [])
            current = self.data.get(name)
            # A value no longer in the cached options (or from a shared link) stays selectable.
            if current and current not in values:
                values = [*values, current]
            self.fields[name].choices = _blank([(v, v) for v in values])
        self.fields["scope"].choices = _blank([(s, s) for s in scopes])
        if self.is_bound and not self.data.get("per_page"):
            # The box shows the size the list is paged by, not its first choice.
            self.data = self.data.copy()
            self.data["per_page"] = str(DEFAULT_PAGE_SIZE)
        self.fields["per_page"].initial = DEFAULT_PAGE_SIZE

    def filters(self) -> dict[str, Any]:
        """Valid filters only: an invalid value is reported and ignored, not fatal."""
        self.is_valid()  # cleaned_data keeps only the fields that validated
        data = self.cleaned_data
        result = {k: v for k, v in data.items() if k not in ("per_page",) and v not in (None, "")}
        result["removed"] = bool(data.get("removed"))
        result["sort"] = data.get("sort") or "name"
        return result


# --- attestations and exceptions -------------------------------------------------------------
class TargetForm(PlainLabels, forms.Form):
    """What an attestation or exception applies to: exactly one of cluster, subscription, tag."""

    TARGETS = [
        ("cluster", "One cluster"),
        ("subscription", "A subscription, optionally one resource group in it"),
        ("tag", "Every cluster with a tag"),
    ]

    control = forms.ChoiceField(choices=CONTROL_CHOICES)
    target = forms.ChoiceField(choices=TARGETS, widget=forms.RadioSelect, initial="cluster", label="Applies to")
    cluster = forms.CharField(
        required=False,
        max_length=1024,
        label="Cluster resource ID",
        help_text="/subscriptions/…/resourceGroups/…/providers/Microsoft.Kubernetes/connectedClusters/NAME",
    )
    subscription_id = forms.CharField(required=False, max_length=36, label="Subscription ID")
    resource_group = forms.CharField(required=False, max_length=90, label="Resource group (optional)")
    tag = forms.CharField(required=False, max_length=1025, label="Tag", help_text="key, or key=value")
    expires_on = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="It lapses at 00:00 UTC on this date.",
    )
    max_days = 365
    own_fields: tuple[str, ...] = ()  # what this kind of record says besides control, target and expiry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        today = timezone.now().date()
        latest = today + dt.timedelta(days=self.max_days)
        field = self.fields["expires_on"]
        field.widget.attrs.update({"min": (today + dt.timedelta(days=1)).isoformat(), "max": latest.isoformat()})
        field.help_text = f"It lapses at 00:00 UTC on this date: at most {self.max_days} days from today (by {latest:%Y-%m-%d})."
        field.initial = today + dt.timedelta(days=min(90, self.max_days))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        target = cleaned.get("target")
        if target == "cluster":
            value = (cleaned.get("cluster") or "").strip()
            cluster = Cluster.objects.filter(key=value.lower()).only("pk", "name").first() if value else None
            if not value:
                self.add_error("cluster", "Enter the cluster's resource ID.")
            elif cluster is None:
                self.add_error("cluster", "No cluster with this resource ID is in the inventory.")
            cleaned["cluster_obj"] = cluster
        elif target == "subscription" and not (cleaned.get("subscription_id") or "").strip():
            self.add_error("subscription_id", "Enter the subscription ID.")
        elif target == "tag" and not (cleaned.get("tag") or "").partition("=")[0].strip():
            self.add_error("tag", "Enter a tag key, or key=value.")
        return cleaned

    def target_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["target"] == "cluster":
            return {"cluster": data["cluster_obj"]}
        if data["target"] == "subscription":
            return {"subscription_id": data["subscription_id"].strip(), "resource_group": (data.get("resource_group") or "").strip()}
        key, _, value = data["tag"].partition("=")
        return {"tag_key": key.strip(), "tag_value": value.strip()}

    def expires_at(self) -> dt.datetime:
        return dt.datetime.combine(self.cleaned_data["expires_on"], dt.time.min, tzinfo=dt.UTC)

    def record_fields(self) -> dict[str, Any]:
        """What the governance service records: control, the kind's own fields, expiry, target."""
        data = self.cleaned_data
        own = {name: data[name] for name in self.own_fields}
        return {"control": data["control"], **own, "expires_at": self.expires_at(), **self.target_fields()}

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's ValidationError on the matching fields (or the form)."""
        aliases = {"expires_at": "expires_on", "tag_key": "tag", "tag_value": "tag", "__all__": None}
        if hasattr(error, "error_dict"):
            for name, errors in error.error_dict.items():
                field = aliases.get(name, name)
                self.add_error(field if field in self.fields else None, [m for e in errors for m in e.messages])
        else:
            self.add_error(None, error.messages)


class AttestationForm(TargetForm):
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        help_text="What holds, how it was verified and by whom (for example the output of kubectl get networkpolicy -A).",
    )
    evidence_url = forms.URLField(required=False, max_length=1000, label="Evidence URL", assume_scheme="https")
    own_fields = ("statement", "evidence_url")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.max_days = settings.ARC_ATTESTATION_MAX_DAYS
        super().__init__(*args, **kwargs)


class ExceptionForm(TargetForm):
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        help_text="Why the risk is accepted, what compensates for it, and the plan to remediate.",
    )
    owner = forms.CharField(max_length=200, help_text="Who owns the risk and its remediation (a person or team).")
    own_fields = ("justification", "owner")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.max_days = settings.ARC_EXCEPTION_MAX_DAYS
        super().__init__(*args, **kwargs)


class DecisionForm(PlainLabels, forms.Form):
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label="Note (optional)")


# --- scopes ----------------------------------------------------------------------------------
class LinesField(forms.CharField):
    """One value per line (textarea) ⇄ a list."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


class ScopeForm(PlainLabels, forms.ModelForm):
    # Names only: the operator defines where each cloud and credential set points (posture/clouds.py).
    cloud = forms.ChoiceField(label="Cloud", choices=cloud_choices)
    credential = forms.ChoiceField(
        label="Credential",
        required=False,
        choices=credential_choices,
        help_text="A set of environment variables the operator listed in ARC_CREDENTIALS; secrets are never stored here.",
    )
    subscriptions = LinesField(required=False, help_text="Subscription GUIDs, one per line. Leave empty to scan every subscription.")
    management_groups = LinesField(required=False, help_text="Management group IDs, one per line (instead of subscriptions).")

    class Meta:
        model = Scope
        fields = [
            "name",
            "tenant_id",
            "cloud",
            "credential",
            "subscriptions",
            "management_groups",
            "schedule",
            "enabled",
        ]
        labels = {
            "tenant_id": "Tenant ID or domain",
            "schedule": "Schedule (cron, UTC)",
            "enabled": "Scan on schedule",
        }
        help_texts = {
            "name": "Letters, digits and hyphens; used in URLs and the command line.",
            "cloud": "Custom clouds (private endpoints, a CA bundle) are defined by the operator in ARC_CLOUDS.",
            "schedule": "Five fields: minute hour day month weekday. 0 */6 * * * = every six hours.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and get_cloud(self.instance.cloud) is None:  # e.g. migrated from free-form endpoints
            self.fields["cloud"].choices = [("", f"{self.instance.cloud}: not defined here, choose a cloud"), *cloud_choices()]
            self.initial["cloud"] = ""
        if self.instance.pk and self.instance.credential not in credential_names():
            # Kept selected (and refused on save) rather than shown as Default: an unrelated edit
            # must not switch the scope to another identity.
            stale = self.instance.credential
            self.fields["credential"].choices = [(stale, f"{stale}: no longer listed, choose a credential"), *credential_choices()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("subscriptions") and cleaned.get("management_groups"):
            raise ValidationError("Give subscriptions or management groups, not both.")
        return cleaned


# --- users -----------------------------------------------------------------------------------
ROLE_CHOICES = [(role, role.capitalize()) for role in ROLE_PERMISSIONS]


class UserCreateForm(PlainLabels, forms.Form):
    username = forms.CharField(max_length=150, label="User name")
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError("A user with this name already exists.")
        return username


class RoleForm(PlainLabels, forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
