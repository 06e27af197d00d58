"""Attestations and exceptions: create, change, approve, revoke — each versioned, each followed
by a re-evaluation once the change is committed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from posture.catalog.controls import CATALOG_VERSION, CONTROLS_BY_ID
from posture.models import Attestation, ControlResult, FleetSnapshot, GovernanceEvent, RiskException, Scope
from posture.task_queue import EVALUATE_SCOPES, enqueue


def _record(obj: Attestation | RiskException, action: str, user: Any) -> None:
    kind = "attestation" if isinstance(obj, Attestation) else "exception"
    data = model_to_dict(obj)
    GovernanceEvent.objects.create(
        kind=kind,
        object_id=obj.pk,
        action=action,
        actor=user if user and user.is_authenticated else None,
        data={k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in data.items()},
    )


def _reevaluate_after_commit() -> None:
    transaction.on_commit(lambda: enqueue(EVALUATE_SCOPES))


def _validate(obj: Attestation | RiskException, max_days: int, now: dt.datetime) -> None:
    errors: dict[str, str] = {}
    if obj.control not in CONTROLS_BY_ID:
        errors["control"] = "Choose a control from the catalog."
    if obj.expires_at is None or obj.expires_at <= now:
        errors["expires_at"] = "The expiry must be in the future."
    elif obj.expires_at > now + dt.timedelta(days=max_days):
        errors["expires_at"] = f"The expiry may be at most {max_days} days away."
    if errors:
        raise ValidationError(errors)
    obj.clean_target()
    obj.full_clean(exclude=["attested_by", "requested_by", "revoked_by", "decided_by"])


@transaction.atomic
def attestation_create(*, user: Any, **fields: Any) -> Attestation:
    return _save_attestation(Attestation(attested_by=user, **fields), "created", user)


@transaction.atomic
def attestation_update(*, attestation: Attestation, user: Any, statement: str, evidence_url: str, expires_at: dt.datetime) -> Attestation:
    if attestation.revoked_at is not None:
        raise ValidationError("A revoked attestation cannot be changed; record a new one.")
    attestation.statement, attestation.evidence_url, attestation.expires_at = statement, evidence_url, expires_at
    return _save_attestation(attestation, "changed", user)


def _save_attestation(attestation: Attestation, action: str, user: Any) -> Attestation:
    _validate(attestation, settings.ARC_ATTESTATION_MAX_DAYS, timezone.now())
    attestation.save()
    _record(attestation, action, user)
    _reevaluate_after_commit()
    return attestation


@transaction.atomic
def attestation_revoke(*, attestation: Attestation, user: Any) -> Attestation:
    if attestation.revoked_at is None:
        attestation.revoked_at, attestation.revoked_by = timezone.now(), user
        attestation.save(update_fields=["revoked_at", "revoked_by"])
        _record(attestation, "revoked", user)
        _reevaluate_after_commit()
    return attestation


@transaction.atomic
def exception_request(*, user: Any, **fields: Any) -> RiskException:
    exception = RiskException(requested_by=user, state=RiskException.State.REQUESTED, **fields)
    _validate(exception, settings.ARC_EXCEPTION_MAX_DAYS, timezone.now())
    exception.save()
    _record(exception, "created", user)
    return exception


def _decide(
    exception: RiskException, user: Any, state: str, note: str, allowed_from: tuple[str, ...], permitted: Any = None
) -> RiskException:
    current = RiskException.objects.select_for_update().get(pk=exception.pk)
    if current.state not in allowed_from:
        raise ValidationError(f"This exception is {current.state}; it cannot become {state}.")
    if permitted is not None and not permitted(current, user):  # judged on the locked row
        raise PermissionDenied(REVOKE_REFUSED)
    if state == RiskException.State.APPROVED:
        if settings.ARC_EXCEPTION_FOUR_EYES and current.requested_by_id == getattr(user, "pk", None):
            raise PermissionDenied("Separation of duties: someone other than the requester must approve.")
        if current.expires_at <= timezone.now():
            raise ValidationError("This exception has already expired; request a new one.")
    current.state, current.decided_by, current.decided_at, current.decision_note = state, user, timezone.now(), note
    current.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    _record(current, {"approved": "approved", "rejected": "rejected", "revoked": "revoked"}[state], user)
    if state in (RiskException.State.APPROVED, RiskException.State.REVOKED):
        _reevaluate_after_commit()
    return current


@transaction.atomic
def exception_approve(*, exception: RiskException, user: Any, note: str = "") -> RiskException:
    return _decide(exception, user, RiskException.State.APPROVED, note, (RiskException.State.REQUESTED,))


@transaction.atomic
def exception_reject(*, exception: RiskException, user: Any, note: str = "") -> RiskException:
    return _decide(exception, user, RiskException.State.REJECTED, note, (RiskException.State.REQUESTED,))


REVOKE_REFUSED = "Only an administrator, or the requester before a decision, may revoke this exception."


def may_revoke(exception: RiskException, user: Any) -> bool:
    """Admins revoke any live exception; a requester may withdraw their own request before a decision."""
    if user.has_perm("posture.approve_exception"):
        return exception.state in RiskException.LIVE_STATES
    return (
        user.has_perm("posture.request_exception")
        and exception.requested_by_id == user.pk
        and exception.state == RiskException.State.REQUESTED
    )


@transaction.atomic
def exception_revoke(*, exception: RiskException, user: Any, note: str = "") -> RiskException:
    return _decide(exception, user, RiskException.State.REVOKED, note, RiskException.LIVE_STATES, permitted=may_revoke)


@dataclass(frozen=True)
class ExceptionAudit:
    expired: list[RiskException]
    expiring_soon: list[RiskException]
    unused: list[RiskException]


def exception_audit(now: dt.datetime | None = None) -> ExceptionAudit:
    """Approved exceptions that lapsed, lapse soon, or except nothing at all today."""
    now = now or timezone.now()
    approved = RiskException.objects.filter(state=RiskException.State.APPROVED).select_related("cluster")
    soon = now + dt.timedelta(days=settings.ARC_EXPIRING_SOON_DAYS)
    active = list(approved.filter(expires_at__gt=now))
    used = set(ControlResult.objects.filter(exception__in=active).values_list("exception_id", flat=True).distinct())
    return ExceptionAudit(
        expired=list(approved.filter(expires_at__lte=now).order_by("-expires_at")),
        expiring_soon=[e for e in active if e.expires_at <= soon],
        unused=[e for e in active if e.pk not in used],
    )


def scopes_needing_evaluation(now: dt.datetime | None = None) -> list[int]:
    """Scopes whose stored verdicts are outdated without any new scan: the catalog changed, or an
    attestation or exception expired since their last evaluation."""
    now = now or timezone.now()
    due = []
    for scope in Scope.objects.all():
        latest = FleetSnapshot.objects.filter(scope=scope).order_by("-created_at").first()
        if latest is None:
            continue
        lapsed = (
            Attestation.objects.filter(revoked_at__isnull=True, expires_at__gt=latest.created_at, expires_at__lte=now).exists()
            or RiskException.objects.filter(
                state=RiskException.State.APPROVED, expires_at__gt=latest.created_at, expires_at__lte=now
            ).exists()
        )
        if latest.catalog_version != CATALOG_VERSION or lapsed:
            due.append(scope.pk)
    return due
