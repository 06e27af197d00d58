"""Governance: attestations and exceptions by state, one with its history and the results it changes."""

from __future__ import annotations

import datetime as dt
from typing import TypeVar

from django.conf import settings
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from posture.models import Attestation, ControlResult, GovernanceEvent, RiskException

T = TypeVar("T", bound=Model)
ATTESTATION_RELATED = ("cluster", "attested_by", "revoked_by")
EXCEPTION_RELATED = ("cluster", "requested_by", "decided_by")


def attestation_list(*, state: str = "", control: str = "") -> QuerySet[Attestation]:
    items = Attestation.objects.select_related(*ATTESTATION_RELATED).order_by("-created_at", "-pk")
    # Live until revoked; "revoked" lists the revoked ones.
    return _in_state(items, state, control, live=Q(revoked_at__isnull=True), others={"revoked": Q(revoked_at__isnull=False)})


def exception_list(*, state: str = "", control: str = "") -> QuerySet[RiskException]:
    items = RiskException.objects.select_related(*EXCEPTION_RELATED).order_by("-requested_at", "-pk")
    # Live once approved; any other state (requested, rejected, revoked) lists the exceptions in it.
    others = {value: Q(state=value) for value in RiskException.State.values}
    return _in_state(items, state, control, live=Q(state=RiskException.State.APPROVED), others=others)


def _in_state(items: QuerySet[T], state: str, control: str, *, live: Q, others: dict[str, Q]) -> QuerySet[T]:
    """`items` in a list's state (active, expired and expiring apply to live items; `others` to
    the rest) and of `control`; no state or control keeps them all."""
    now = timezone.now()
    by_expiry = {
        "active": Q(expires_at__gt=now),
        "expired": Q(expires_at__lte=now),
        "expiring": Q(expires_at__gt=now, expires_at__lte=now + expiring_window()),
    }
    if state in by_expiry:
        items = items.filter(live & by_expiry[state])
    elif state in others:
        items = items.filter(others[state])
    return items.filter(control=control) if control else items


def expiring_window() -> dt.timedelta:
    return dt.timedelta(days=settings.ARC_EXPIRING_SOON_DAYS)


def attestation_get(*, pk: int) -> Attestation | None:
    return Attestation.objects.select_related(*ATTESTATION_RELATED).filter(pk=pk).first()


def exception_get(*, pk: int) -> RiskException | None:
    return RiskException.objects.select_related(*EXCEPTION_RELATED).filter(pk=pk).first()


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
