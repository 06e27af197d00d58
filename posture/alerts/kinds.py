"""The kinds of alert rule: their parameters (AlertRule.params), the severity of their items and
the limits that apply to them.

- control_regression: change events of a scan or a re-evaluation; params min_severity;
  every limit applies.
- score_drop: score history of a scan or a re-evaluation; params drop and/or below (points);
  ignores controls and severities (refused).
- cluster_stale: the periodic tick (posture/alerts/timed.py); params hours; ignores controls and
  severities (refused).
- private_link: change events of ARC-PL-01 / ARC-PL-02 from pass to fail; params changes; every
  limit applies (controls: those two only).
- governance_expiry: the periodic tick; params days, records; ignores severities (refused).
- new_failing_cluster: failing results of a scan's new clusters; params min_severity; every
  limit applies.
- scan_failed: a scan's close, whatever closed it; params failed, throttled_minutes; a scan is
  no cluster's: only the scopes limit applies, the others are refused.

An item of a control's change (control_regression, private_link, new_failing_cluster) has its
control's severity; every other kind's items have the fixed severity in KIND_SEVERITY, so a
severities limit on them could only match all or nothing and is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError

from posture.catalog.controls import SEVERITY_WEIGHTS
from posture.models import AlertRule, Status

Kind = AlertRule.Kind

# A control "regresses" when it moves into one of these from any other status.
REGRESSED = (Status.FAIL, Status.UNKNOWN)

# The Private Link changes a private_link rule watches, by the control whose move from pass to
# fail records them (posture/catalog/controls.py).
PRIVATE_LINK_CONTROLS = {"ARC-PL-01": "disabled", "ARC-PL-02": "public_access"}
PRIVATE_LINK_CHANGES = {"disabled": "Private Link disabled", "public_access": "Private Link Scope opened public network access"}

# Items that are not a control's change carry this severity.
KIND_SEVERITY = {
    Kind.SCORE_DROP: "medium",
    Kind.CLUSTER_STALE: "medium",
    Kind.GOVERNANCE_EXPIRY: "medium",
    Kind.SCAN_FAILED: "high",
}

CLUSTER_LIMITS = ("scopes", "subscriptions", "resource_groups", "tags")
ALL_LIMITS = (*CLUSTER_LIMITS, "controls", "severities")
LIMITS = {
    Kind.CONTROL_REGRESSION: ALL_LIMITS,
    Kind.SCORE_DROP: CLUSTER_LIMITS,
    Kind.CLUSTER_STALE: CLUSTER_LIMITS,
    Kind.PRIVATE_LINK: ALL_LIMITS,
    Kind.GOVERNANCE_EXPIRY: (*CLUSTER_LIMITS, "controls"),
    Kind.NEW_FAILING_CLUSTER: ALL_LIMITS,
    Kind.SCAN_FAILED: ("scopes",),
}
WHY_NOT = {
    "controls": "its items are not a control's change",
    "severities": "its items all have the severity {severity}",
    "subscriptions": "a scan is not one cluster's",
    "resource_groups": "a scan is not one cluster's",
    "tags": "a scan is not one cluster's",
}

# Kinds planned when a scan closes, and from a re-evaluation's change events.
SCAN_KINDS = (Kind.CONTROL_REGRESSION, Kind.SCORE_DROP, Kind.PRIVATE_LINK, Kind.NEW_FAILING_CLUSTER, Kind.SCAN_FAILED)
REEVALUATION_KINDS = (Kind.CONTROL_REGRESSION, Kind.SCORE_DROP, Kind.PRIVATE_LINK)
# Kinds planned by the periodic tick.
TIMED_KINDS = (Kind.CLUSTER_STALE, Kind.GOVERNANCE_EXPIRY)


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_WEIGHTS.get(severity, 0) >= SEVERITY_WEIGHTS[minimum]


def _refuse_unknown(params: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValidationError({"params": f"Unknown parameters for this kind: {', '.join(unknown)}."})


def _number(params: dict[str, Any], name: str, low: float, high: float, *, integer: bool = False) -> Any:
    value = params.get(name)
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "a whole number" if integer else "a number"
        raise ValidationError({"params": f"{name} must be {what} from {low:g} to {high:g}, not {value!r}."})
    return value


def _min_severity(params: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown(params, {"min_severity"})
    minimum = params.get("min_severity", "low")
    if minimum not in SEVERITY_WEIGHTS:
        raise ValidationError({"params": f"min_severity must be one of {', '.join(SEVERITY_WEIGHTS)}, not {minimum!r}."})
    return {"min_severity": minimum}


def _score_drop(params: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown(params, {"drop", "below"})
    drop, below = _number(params, "drop", 0.1, 100), _number(params, "below", 0.1, 100)
    if drop is None and below is None:
        raise ValidationError({"params": "Give drop (points lost in one evaluation), below (a score threshold), or both."})
    return {"drop": drop, "below": below}


def _cluster_stale(params: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown(params, {"hours"})
    hours = _number(params, "hours", 1, 24 * 90, integer=True)
    if hours is None:
        raise ValidationError({"params": "Give hours: how long a cluster is stale or offline before the alert."})
    return {"hours": hours}


def _choices(params: dict[str, Any], name: str, allowed: tuple[str, ...]) -> list[str]:
    value = params.get(name, list(allowed))
    if not isinstance(value, list) or not value or not set(value) <= set(allowed):
        raise ValidationError({"params": f"{name} must be a non-empty list of {', '.join(allowed)}, not {value!r}."})
    return [a for a in allowed if a in value]


def _private_link(params: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown(params, {"changes"})
    return {"changes": _choices(params, "changes", tuple(PRIVATE_LINK_CHANGES))}


def _governance_expiry(params: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown(params, {"days", "records"})
    days = _number(params, "days", 0, 365, integer=True)
    if days is None:
        raise ValidationError({"params": "Give days: how long before the expiry to warn (0: only once expired)."})
    return {"days": days, "records": _choices(params, "records", ("attestations", "exceptions"))}


def _scan_failed(params: dict[str, Any]) -> dict[str, Any]:
    _refuse_unknown(params, {"failed", "throttled_minutes"})
    failed = params.get("failed", True)
    if not isinstance(failed, bool):
        raise ValidationError({"params": f"failed must be true or false, not {failed!r}."})
    minutes = _number(params, "throttled_minutes", 1, 24 * 60, integer=True)
    if not failed and minutes is None:
        raise ValidationError({"params": "Alert on failed scans, on throttled ones (throttled_minutes), or both."})
    return {"failed": failed, "throttled_minutes": minutes}


CHECKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    Kind.CONTROL_REGRESSION: _min_severity,
    Kind.SCORE_DROP: _score_drop,
    Kind.CLUSTER_STALE: _cluster_stale,
    Kind.PRIVATE_LINK: _private_link,
    Kind.GOVERNANCE_EXPIRY: _governance_expiry,
    Kind.NEW_FAILING_CLUSTER: _min_severity,
    Kind.SCAN_FAILED: _scan_failed,
}


def clean_params(kind: str, params: Any) -> dict[str, Any]:
    """The kind's parameters with defaults filled in; ValidationError naming what is wrong."""
    if kind not in CHECKERS:
        raise ValidationError({"kind": f"Unknown kind of rule {kind!r}."})
    if not isinstance(params, dict):
        raise ValidationError({"params": "Parameters must be an object."})
    return CHECKERS[kind](params)


def limit_problems(rule: AlertRule) -> dict[str, str]:
    """The limits set on `rule` that its kind cannot apply, with why (field → message)."""
    allowed = LIMITS.get(rule.kind, ALL_LIMITS)
    problems = {}
    for field in ALL_LIMITS:
        if getattr(rule, field) and field not in allowed:
            why = WHY_NOT.get(field, "").format(severity=KIND_SEVERITY.get(rule.kind, ""))
            problems[field] = f"A rule of this kind cannot be limited by {field.replace('_', ' ')}: {why}."
    if rule.kind == Kind.PRIVATE_LINK and rule.controls and not set(rule.controls) <= set(PRIVATE_LINK_CONTROLS):
        problems["controls"] = f"A Private Link rule watches {' and '.join(PRIVATE_LINK_CONTROLS)} only."
    return problems
