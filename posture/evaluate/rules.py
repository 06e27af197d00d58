"""What happens around a check: staleness, attestations and exceptions, in that order.

- Stale: on an Offline, Expired or long-silent cluster a pass from Azure data becomes unknown
  (stale): old data may no longer be true. A fail stays a fail.
- Attestation: an unknown verdict becomes attested while an attestation covers it. A fail is
  never overridden by an attestation; Azure's evidence wins.
- Exception: a fail or unknown becomes excepted while an approved exception covers it.
"""

from __future__ import annotations

from typing import Any

from posture.catalog.controls import CONTROLS, Control
from posture.evaluate.checks import CHECKS
from posture.evaluate.context import Context
from posture.evaluate.verdict import Verdict
from posture.models.results import Reason, Status
from posture.normalize import parse_time

FRESHNESS_CONTROL = "ARC-EV-01"


def is_stale(facts: dict[str, Any], ctx: Context) -> bool:
    last = parse_time(facts["last_connectivity_time"]) if facts.get("last_connectivity_time") else None
    return ctx.is_stale(facts.get("connectivity_status"), last)


def judge(control: Control, facts: dict[str, Any], cluster: dict[str, Any], ctx: Context, stale: bool) -> Verdict:
    verdict = CHECKS[control.id](facts, ctx)
    if stale and verdict.status == Status.PASS and control.id != FRESHNESS_CONTROL and control.source != "attestation":
        verdict = Verdict(
            Status.UNKNOWN,
            Reason.STALE,
            f"Stale: the cluster is not connected, so this pass may no longer hold. ({verdict.detail})",
            verdict.evidence,
        )
    verdict.raw_status = verdict.status
    if verdict.status == Status.UNKNOWN:
        attestation = ctx.attestation_for(control.id, cluster)
        if attestation is not None:
            verdict.status, verdict.reason, verdict.attestation_id = Status.ATTESTED, Reason.ATTESTATION, attestation.pk
            verdict.detail = f"Attested until {attestation.expires_at:%Y-%m-%d}: {attestation.statement[:300]}"
    elif verdict.status == Status.FAIL and ctx.attestation_for(control.id, cluster) is not None:
        verdict.detail += " An attestation exists, but Azure's data contradicts it."
    if verdict.status in (Status.FAIL, Status.UNKNOWN):
        exception = ctx.exception_for(control.id, cluster)
        if exception is not None:
            verdict.status, verdict.reason, verdict.exception_id = Status.EXCEPTED, Reason.EXCEPTION, exception.pk
            verdict.detail = f"Risk accepted until {exception.expires_at:%Y-%m-%d} (owner {exception.owner}). {verdict.detail}"
    return verdict


def evaluate_cluster(facts: dict[str, Any], cluster: dict[str, Any], ctx: Context) -> dict[str, Verdict]:
    stale = is_stale(facts, ctx)
    return {control.id: judge(control, facts, cluster, ctx, stale) for control in CONTROLS}
