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
            self._evidence_json = _serialize(self.evidence)
        return self._evidence_json


# Across a fleet most evidence repeats (the same states, the same missing values), so flat
# evidence is serialized once per distinct value. Types are part of the key: True == 1 in Python.
_SERIALIZED: dict[tuple[Any, ...], str] = {}
_SERIALIZED_MAX = 200_000


def _serialize(evidence: dict[str, Any]) -> str:
    try:
        key = tuple((k, type(v), v) for k, v in evidence.items())
        cached = _SERIALIZED.get(key)
    except TypeError:  # a list or dict inside: not hashable, serialize directly
        key, cached = None, None
    if cached is None:
        # Checks build evidence in a fixed key order, so no sorting is needed for a stable digest.
        cached = json.dumps(evidence, separators=(",", ":"), default=str)
        if key is not None and len(_SERIALIZED) < _SERIALIZED_MAX:
            _SERIALIZED[key] = cached
    return cached


def passed(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.PASS, Reason.EVIDENCE, detail, evidence)


def failed(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.FAIL, Reason.EVIDENCE, detail, evidence)


def unknown(reason: str, detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.UNKNOWN, reason, detail, evidence)


def not_applicable(detail: str, **evidence: Any) -> Verdict:
    return Verdict(Status.NOT_APPLICABLE, Reason.EVIDENCE, detail, evidence)
