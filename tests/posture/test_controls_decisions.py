"""Attestations and exceptions: which clusters they cover, what they may change in a verdict,
and which of them an evaluation loads."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from posture.evaluate.rules import evaluate_cluster
from posture.models.results import Status
from tests.posture.control_rows import AKS, HUB, NOW, SUB, cluster_info, cluster_row, context, facts, instance


def decision(pk, expires, **target):
    fields = {"cluster_id": None, "subscription_id": "", "resource_group": "", "tag_key": "", "tag_value": ""}
    fields.update(target)
    from posture.models import Attestation, RiskException

    obj = Attestation(pk=pk, control="", statement="verified by kubectl get networkpolicy -A", expires_at=expires, **fields)
    exc = RiskException(pk=pk, control="", justification="legacy", owner="platform team", expires_at=expires, state="approved", **fields)
    return SimpleNamespace(attestation=obj, exception=exc)


@pytest.mark.parametrize(
    "target,applies",
    [
        ({"cluster_id": 1}, True),
        ({"cluster_id": 2}, False),
        ({"subscription_id": SUB}, True),
        ({"subscription_id": SUB, "resource_group": "EDGE"}, True),
        ({"subscription_id": SUB, "resource_group": "other"}, False),
        ({"subscription_id": HUB}, False),
        ({"tag_key": "env", "tag_value": "prod"}, True),
        ({"tag_key": "env"}, True),
        ({"tag_key": "env", "tag_value": "dev"}, False),
    ],
)
def test_attestations_cover_their_targets(target, applies) -> None:
    fact = facts(cluster_row(tags={"env": "prod"}))
    att = decision(7, NOW + dt.timedelta(days=30), **target).attestation
    verdict = evaluate_cluster(fact, cluster_info(fact), context(attestations={"ARC-NP-02": [att]}))["ARC-NP-02"]
    assert verdict.status == (Status.ATTESTED if applies else Status.UNKNOWN)
    assert verdict.raw_status == Status.UNKNOWN
    assert (verdict.attestation_id == 7) is applies


def test_an_attestation_never_overrides_a_failure() -> None:
    fact = facts(cluster_row(**AKS), instance=instance("flannel"))
    att = decision(3, NOW + dt.timedelta(days=30), cluster_id=1).attestation
    verdict = evaluate_cluster(fact, cluster_info(fact), context(attestations={"ARC-NP-01": [att]}))["ARC-NP-01"]
    assert verdict.status == Status.FAIL and "contradicts" in verdict.detail


def test_exceptions_except_failures_and_unknowns_but_not_passes() -> None:
    fact = facts()  # direct path: PL-01 fails; NP-02 unknown; ID-01 passes
    exc = decision(9, NOW + dt.timedelta(days=30), subscription_id=SUB).exception
    ctx = context(exceptions={"ARC-PL-01": [exc], "ARC-NP-02": [exc], "ARC-ID-01": [exc]})
    verdicts = evaluate_cluster(fact, cluster_info(fact), ctx)
    assert verdicts["ARC-PL-01"].status == Status.EXCEPTED and verdicts["ARC-PL-01"].raw_status == Status.FAIL
    assert verdicts["ARC-NP-02"].status == Status.EXCEPTED and verdicts["ARC-NP-02"].exception_id == 9
    assert verdicts["ARC-ID-01"].status == Status.PASS


@pytest.mark.django_db
def test_expired_and_revoked_decisions_are_not_loaded(django_user_model) -> None:
    from posture.evaluate.context import build_context
    from posture.models import Attestation, RiskException

    def make(model, **kw):
        base = {"control": "ARC-NP-02", "subscription_id": SUB}
        if model is Attestation:
            base["statement"] = "x"
        else:
            base.update(justification="x", owner="o")
        return model.objects.create(**base, **kw)

    live_att = make(Attestation, expires_at=NOW + dt.timedelta(days=1))
    make(Attestation, expires_at=NOW - dt.timedelta(seconds=1))
    make(Attestation, expires_at=NOW + dt.timedelta(days=1), revoked_at=NOW)
    live_exc = make(RiskException, expires_at=NOW + dt.timedelta(days=1), state="approved")
    make(RiskException, expires_at=NOW + dt.timedelta(days=1), state="requested")
    make(RiskException, expires_at=NOW - dt.timedelta(days=1), state="approved")
    ctx = build_context(NOW)
    assert [a.pk for a in ctx.attestations["ARC-NP-02"]] == [live_att.pk]
    assert [e.pk for e in ctx.exceptions["ARC-NP-02"]] == [live_exc.pk]


@pytest.mark.django_db
def test_the_newest_covering_attestation_is_cited() -> None:
    from posture.evaluate.context import build_context
    from posture.models import Attestation

    older = Attestation.objects.create(
        control="ARC-NP-02",
        subscription_id=SUB,
        statement="old",
        expires_at=NOW + dt.timedelta(days=5),
        created_at=NOW - dt.timedelta(days=9),
    )
    newer = Attestation.objects.create(
        control="ARC-NP-02", subscription_id=SUB, statement="renewed", expires_at=NOW + dt.timedelta(days=90), created_at=NOW
    )
    Attestation.objects.create(control="ARC-NP-02", subscription_id=HUB, statement="elsewhere", expires_at=NOW + dt.timedelta(days=90))
    fact = facts()
    verdict = evaluate_cluster(fact, cluster_info(fact), build_context(NOW))["ARC-NP-02"]
    assert verdict.status == Status.ATTESTED and verdict.attestation_id == newer.pk != older.pk
