"""The kinds of alert rule and their parameters (AlertRule.params).

Each kind checks its parameters here and nowhere else, so a new kind (score drop, stale or
offline, Private Link, governance expiry, new failing cluster, scan failed) adds a value to
AlertRule.Kind, a checker below and a planner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError

from posture.catalog.controls import SEVERITY_WEIGHTS
from posture.models import AlertRule, Status

# A control "regresses" when it moves into one of these from any other status.
REGRESSED = (Status.FAIL, Status.UNKNOWN)


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_WEIGHTS.get(severity, 0) >= SEVERITY_WEIGHTS[minimum]


def _control_regression(params: dict[str, Any]) -> dict[str, Any]:
    minimum = params.get("min_severity", "low")
    if minimum not in SEVERITY_WEIGHTS:
        raise ValidationError({"params": f"min_severity must be one of {', '.join(SEVERITY_WEIGHTS)}, not {minimum!r}."})
    unknown = sorted(set(params) - {"min_severity"})
    if unknown:
        raise ValidationError({"params": f"Unknown parameters for this kind: {', '.join(unknown)}."})
    return {"min_severity": minimum}


CHECKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    AlertRule.Kind.CONTROL_REGRESSION: _control_regression,
}


def clean_params(kind: str, params: Any) -> dict[str, Any]:
    """The kind's parameters with defaults filled in; ValidationError naming what is wrong."""
    if kind not in CHECKERS:
        raise ValidationError({"kind": f"Unknown kind of rule {kind!r}."})
    if not isinstance(params, dict):
        raise ValidationError({"params": "Parameters must be an object."})
    return CHECKERS[kind](params)
