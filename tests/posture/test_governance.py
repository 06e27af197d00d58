"""Attestations and exceptions are validated, versioned, and change verdicts once committed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from posture import governance
from posture.models import Attestation, GovernanceEvent, RiskException

SUB = "11111111-1111-1111-1111-111111111111"


def soon(days: float = 30) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=days)


@pytest.mark.django_db
def test_attestation_is_recorded_with_its_author_and_a_version(analyst, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        att = governance.attestation_create(
            user=analyst, control="ARC-NP-02", subscription_id=SUB.upper(), statement="default deny in every namespace", expires_at=soon()
        )
    assert att.subscription_id == SUB and att.attested_by == analyst
    event = GovernanceEvent.objects.get(kind="attestation", object_id=att.pk)
    assert event.action == "created" and event.actor == analyst and event.data["control"] == "ARC-NP-02"
    assert len(callbacks) == 1  # a re-evaluation is queued after commit


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields,message",
    [
        ({"control": "NOPE"}, "control"),
        ({"expires_at": "past"}, "future"),
        ({"expires_at": "far"}, "at most"),
        ({"subscription_id": "", "tag_key": ""}, "exactly one target"),
        ({"tag_key": "env"}, "exactly one target"),
        ({"subscription_id": "not-a-guid"}, "GUID"),
    ],
)
def test_invalid_attestations_are_refused_with_a_reason(analyst, fields, message) -> None:
    values = {"control": "ARC-NP-02", "subscription_id": SUB, "statement": "x", "expires_at": soon()}
    values.update(fields)
    if values["expires_at"] == "past":
        values["expires_at"] = timezone.now() - dt.timedelta(minutes=1)
    if values["expires_at"] == "far":
        values["expires_at"] = soon(400)
    with pytest.raises(ValidationError) as info:
        governance.attestation_create(user=analyst, **values)
    assert message in str(info.value)
    assert not Attestation.objects.exists()


@pytest.mark.django_db
def test_exception_lifecycle_is_versioned(analyst, admin_user) -> None:
    exc = governance.exception_request(
        user=analyst,
        control="ARC-PL-01",
        subscription_id=SUB,
        justification="gateway migration in Q1",
        owner="edge platform",
        expires_at=soon(90),
    )
    assert exc.state == RiskException.State.REQUESTED
    approved = governance.exception_approve(exception=exc, user=admin_user, note="ok until migration")
    assert approved.state == RiskException.State.APPROVED and approved.decided_by == admin_user
    revoked = governance.exception_revoke(exception=approved, user=admin_user, note="migrated")
    assert revoked.state == RiskException.State.REVOKED
    actions = list(GovernanceEvent.objects.filter(kind="exception", object_id=exc.pk).order_by("at", "pk").values_list("action", flat=True))
    assert actions == ["created", "approved", "revoked"]
    with pytest.raises(ValidationError, match="revoked"):
        governance.exception_approve(exception=exc, user=admin_user)


@pytest.mark.django_db
def test_exceptions_need_an_expiry_within_the_maximum(analyst, settings) -> None:
    settings.ARC_EXCEPTION_MAX_DAYS = 30
    with pytest.raises(ValidationError, match="at most 30 days"):
        governance.exception_request(
            user=analyst, control="ARC-PL-01", subscription_id=SUB, justification="x", owner="o", expires_at=soon(31)
        )


@pytest.mark.django_db
def test_separation_of_duties_can_be_required(admin_user, settings) -> None:
    settings.ARC_EXCEPTION_FOUR_EYES = True
    exc = governance.exception_request(
        user=admin_user, control="ARC-PL-01", subscription_id=SUB, justification="x", owner="o", expires_at=soon()
    )
    with pytest.raises(PermissionDenied):
        governance.exception_approve(exception=exc, user=admin_user)


@pytest.mark.django_db
def test_exception_audit_lists_expired_expiring_and_unused(analyst, admin_user) -> None:
    def approved(days):
        exc = governance.exception_request(
            user=analyst, control="ARC-PL-01", subscription_id=SUB, justification="x", owner="o", expires_at=soon(days)
        )
        return governance.exception_approve(exception=exc, user=admin_user)

    expiring, later = approved(3), approved(60)
    lapsed = approved(1)
    RiskException.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    audit = governance.exception_audit()
    assert [e.pk for e in audit.expired] == [lapsed.pk]
    assert [e.pk for e in audit.expiring_soon] == [expiring.pk]
    assert {e.pk for e in audit.unused} == {expiring.pk, later.pk}  # no cluster results point at them


@pytest.mark.django_db
def test_a_requester_cannot_withdraw_a_request_an_admin_approved_meanwhile(analyst, admin_user) -> None:
    exc = governance.exception_request(
        user=analyst, control="ARC-PL-01", subscription_id=SUB, justification="j", owner="o", expires_at=soon(30)
    )
    seen_by_requester = RiskException.objects.get(pk=exc.pk)  # still "requested" on their screen
    governance.exception_approve(exception=exc, user=admin_user)
    with pytest.raises(PermissionDenied):
        governance.exception_revoke(exception=seen_by_requester, user=analyst)
    assert RiskException.objects.get(pk=exc.pk).state == RiskException.State.APPROVED
