from __future__ import annotations

import json
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
        self._evidence_json: str | None = None

    @property
    def evidence_json(self) -> str:
        """The evidence serialized once, for both the results digest and the database write."""
        if self._evidence_json is None:
            # Checks build evidence in a fixed key order, so no sorting is needed for a stable digest.
            self._evidence_json = json.dumps(self.evidence, separators=(",", ":"), default=str)
        return self._evidence_json


def passed(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.PASS, Reason.EVIDENCE, detail, evidence)


def failed(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.FAIL, Reason.EVIDENCE, detail, evidence)


def unknown(reason: str, detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.UNKNOWN, reason, detail, evidence)


def not_applicable(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.NOT_APPLICABLE, Reason.EVIDENCE, detail, evidence)
