from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from posture.models.results import Reason, Status


@dataclass
class Verdict:
    status: str
    reason: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    raw_status: str = ""
    attestation_id: int | None = None
    exception_id: int | None = None

    def __post_init__(self) -> None:
        self.raw_status = self.raw_status or self.status


def passed(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.PASS, Reason.EVIDENCE, detail, evidence)


def failed(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.FAIL, Reason.EVIDENCE, detail, evidence)


def unknown(reason: str, detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.UNKNOWN, reason, detail, evidence)


def not_applicable(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.NOT_APPLICABLE, Reason.EVIDENCE, detail, evidence)
