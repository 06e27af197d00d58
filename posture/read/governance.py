"""Governance: attestations and exceptions by state, one with its history and the results it changes."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from posture.models import Attestation, ControlResult, GovernanceEvent, RiskException


def attestation_list(*, state: str = "", control: str = "") -> QuerySet[Attestation]:
    now = timezone.now()
    items = Attestation.objects.select_related("cluster", "attested_by", "revoked_by").order_by("-created_at", "-pk")
    if state == "active":
        items = items.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif state == "expired":
        items = items.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "revoked":
        items = items.filter(revoked_at__isnull=False)
    elif state == "expiring":
        items = items.filter(revoked_at__isnull=True, expires_at__gt=now, expires_at__lte=now + expiring_window())
    if control:
        items = items.filter(control=control)
    return items


def exception_list(*, state: str = "", control: str = "") -> QuerySet[RiskException]:
    now = timezone.now()
    items = RiskException.objects.select_related("cluster", "requested_by", "decided_by").order_by("-requested_at", "-pk")
    if state == "active":
        items = items.filter(state=RiskException.State.APPROVED, expires_at__gt=now)
    elif state == "expired":
        items = items.filter(state=RiskException.State.APPROVED, expires_at__lte=now)
    elif state == "expiring":
        items = items.filter(state=RiskException.State.APPROVED, expires_at__gt=now, expires_at__lte=now + expiring_window())
    elif state in RiskException.State.values:
        items = items.filter(state=state)
    if control:
        items = items.filter(control=control)
    return items


def expiring_window() -> dt.timedelta:
    return dt.timedelta(days=settings.ARC_EXPIRING_SOON_DAYS)


def attestation_get(*, pk: int) -> Attestation | None:
    return Attestation.objects.select_related("cluster", "attested_by", "revoked_by").filter(pk=pk).first()


def exception_get(*, pk: int) -> RiskException | None:
    return RiskException.objects.select_related("cluster", "requested_by", "decided_by").filter(pk=pk).first()


def governance_history(*, kind: str, object_id: int) -> list[GovernanceEvent]:
    return list(GovernanceEvent.objects.filter(kind=kind, object_id=object_id).select_related("actor").order_by("at", "pk"))


def covered_results(*, field_name: str, object_id: int, limit: int = 100) -> QuerySet[ControlResult]:
    """Results an attestation (`attestation`) or exception (`exception`) currently changes."""
    return (
        ControlResult.objects.filter(**{f"{field_name}_id": object_id})
        .select_related("cluster")
        .only("pk", "control", "status", "raw_status", "cluster__id", "cluster__name")
        .order_by("cluster__name")[:limit]
    )
