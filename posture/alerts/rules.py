"""Alert rules: creating them with their fields checked, subscribing to them (and unsubscribing),
and whether a rule covers a change.

Limits combine as "all of": a change is covered when it matches every limit that is set. Within
one limit the values are alternatives ("any of these subscriptions"). An empty limit means any.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from posture.alerts.kinds import clean_params, limit_problems, severity_at_least
from posture.catalog.controls import CONTROLS_BY_ID, SEVERITY_WEIGHTS
from posture.models import AlertRule, AlertSubscription, DigestEntry, Scope
from posture.models.scans import GUID_RE

LIMITS = ("scopes", "subscriptions", "resource_groups", "tags", "controls", "severities")


def address_problem(address: str) -> str:
    """Why `address` cannot be mailed, or "" when it can."""
    try:
        validate_email(address)
    except ValidationError:
        return f"{address!r} is not a valid email address."
    return ""


def _strings(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError({field: "Give a list of non-empty strings."})
    return list(dict.fromkeys(v.strip() for v in value))


def _clean_tags(value: Any) -> list[dict[str, str | None]]:
    if not isinstance(value, list):
        raise ValidationError({"tags": "Give a list of {key, value} pairs."})
    tags = []
    for tag in value:
        key = tag.get("key") if isinstance(tag, dict) else None
        tag_value = tag.get("value") if isinstance(tag, dict) else None
        if not isinstance(key, str) or not key.strip() or len(key) > 512 or not (tag_value is None or isinstance(tag_value, str)):
            raise ValidationError({"tags": f"{tag!r} is not a tag: a key (1 to 512 characters) and a value or null."})
        tags.append({"key": key.strip(), "value": tag_value})
    return tags


def clean_rule(rule: AlertRule) -> None:
    """Check and normalise a rule's fields in place; ValidationError naming every field at fault."""
    errors: dict[str, list[str]] = {}

    def check(field: str, clean: Any) -> None:
        try:
            setattr(rule, field, clean(getattr(rule, field)))
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.message_dict.get(field, exc.messages))

    check("name", _name)
    check("params", lambda params: clean_params(rule.kind, params))
    check("scopes", _clean_scopes)
    check("subscriptions", lambda v: [_guid(s) for s in _strings(v, "subscriptions")])
    check("resource_groups", lambda v: list(dict.fromkeys(g.lower() for g in _strings(v, "resource_groups"))))
    check("tags", _clean_tags)
    check("controls", lambda v: _known(_strings(v, "controls"), CONTROLS_BY_ID, "controls"))
    check("severities", lambda v: _known(_strings(v, "severities"), SEVERITY_WEIGHTS, "severities"))
    check("addresses", _clean_addresses)
    for field, problem in limit_problems(rule).items():
        errors.setdefault(field, []).append(problem)
    if errors:
        raise ValidationError(errors)


def _name(name: Any) -> str:
    text = " ".join(str(name or "").split())  # one line: it goes into the subject
    if not text or len(text) > 120:
        raise ValidationError({"name": "Give the rule a name of 1 to 120 characters."})
    return text


def _guid(value: str) -> str:
    if not GUID_RE.match(value):
        raise ValidationError({"subscriptions": f"{value!r} is not a subscription id (a GUID)."})
    return value.lower()


def _known(values: list[str], known: Any, field: str) -> list[str]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValidationError({field: f"Unknown {field}: {', '.join(unknown)}."})
    return values


def _clean_scopes(value: Any) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValidationError({"scopes": "Give a list of scope ids."})
    missing = set(value) - set(Scope.objects.filter(pk__in=value).values_list("pk", flat=True))
    if missing:
        raise ValidationError({"scopes": f"No scope has the id {', '.join(map(str, sorted(missing)))}."})
    return sorted(set(value))


def _clean_addresses(value: Any) -> list[str]:
    addresses = _strings(value, "addresses")
    bad = [problem for a in addresses if (problem := address_problem(a))]
    if bad:
        raise ValidationError({"addresses": bad})
    unique: dict[str, str] = {}
    for address in addresses:
        unique.setdefault(address.lower(), address)  # the first spelling of each
    return list(unique.values())


def rule_create(*, user: Any, name: str, kind: str, params: dict[str, Any] | None = None, **fields: Any) -> AlertRule:
    """A new rule by `user`; `fields` are the limits, `addresses` and `enabled`."""
    unknown = set(fields) - {*LIMITS, "addresses", "enabled"}
    if unknown:
        raise TypeError(f"unknown rule fields: {', '.join(sorted(unknown))}")
    rule = AlertRule(name=name, kind=kind, params=params or {}, created_by=user, **fields)
    clean_rule(rule)
    rule.save()
    return rule


def subscribe(
    *, user: Any, rule: AlertRule, mode: str = AlertSubscription.Mode.IMMEDIATE, digest_hour: int | None = None
) -> AlertSubscription:
    """Subscribe `user` to `rule`, or change how they receive it. Switching from the digest to
    immediate mail leaves the rule's entries already waiting for their digest: they still go out
    at the hour they are due, and what happens from now on is mailed at once."""
    if mode not in AlertSubscription.Mode.values:
        raise ValidationError({"mode": f"Choose {' or '.join(AlertSubscription.Mode.values)}."})
    if mode == AlertSubscription.Mode.DIGEST and not (isinstance(digest_hour, int) and 0 <= digest_hour <= 23):
        raise ValidationError({"digest_hour": "A digest needs an hour from 0 to 23 (UTC)."})
    hour = digest_hour if mode == AlertSubscription.Mode.DIGEST else None
    with transaction.atomic():
        subscription, _ = AlertSubscription.objects.update_or_create(user=user, rule=rule, defaults={"mode": mode, "digest_hour": hour})
    return subscription


def unsubscribe(*, user: Any, rule: AlertRule) -> None:
    """Stop sending `rule` to `user`: their subscription, and the entries of the rule still waiting
    for their digest (as the message's unsubscribe link does, unsubscribe.apply). Digests already
    sent keep their entries. The rule's distribution addresses stay as it lists them, the user's
    own among them (the link opts such an address out). Doing it twice changes nothing more."""
    with transaction.atomic():
        AlertSubscription.objects.filter(user=user, rule=rule).delete()
        DigestEntry.objects.filter(user=user, rule=rule, notification__isnull=True).delete()


# --- coverage -----------------------------------------------------------------------------------
def covers(rule: AlertRule, change: dict[str, Any]) -> bool:
    """Whether `rule` covers a candidate item `change` (posture/alerts/triggers.py): its
    `control` ("" when none) and `severity`, and what the limits match on: `scope_id` (or
    `scope_ids`, a set, None meaning any scope), `subscription_id`, `resource_group`, `tags`.
    Limits a kind cannot apply are refused when the rule is saved (kinds.limit_problems)."""
    control_id = change.get("control") or ""
    control = CONTROLS_BY_ID.get(control_id)
    if control_id and control is None:  # retired from the catalog since
        return False
    severity = change.get("severity") or (control.severity if control else "")
    minimum = rule.params.get("min_severity")
    if minimum and not severity_at_least(severity, minimum):
        return False
    if rule.severities and severity not in rule.severities:
        return False
    if rule.controls and control_id not in rule.controls:
        return False
    if rule.scopes and not _in_scopes(change, rule.scopes):
        return False
    if rule.subscriptions and (change.get("subscription_id") or "").lower() not in rule.subscriptions:
        return False
    if rule.resource_groups and (change.get("resource_group") or "").lower() not in rule.resource_groups:
        return False
    return not rule.tags or any(_has_tag(change.get("tags"), tag) for tag in rule.tags)


def _in_scopes(change: dict[str, Any], scopes: list[int]) -> bool:
    if "scope_ids" in change:
        return change["scope_ids"] is None or bool(change["scope_ids"] & set(scopes))
    return change.get("scope_id") in scopes


def _has_tag(tags: Any, wanted: dict[str, Any]) -> bool:
    # Azure compares tag names without case and values with it.
    if not isinstance(tags, dict):
        return False
    key = wanted["key"].lower()
    return any(k.lower() == key and (wanted["value"] is None or v == wanted["value"]) for k, v in tags.items())


# --- changing and deleting (the rules pages) -----------------------------------------------------
RULE_FIELDS = ("name", "kind", "params", *LIMITS, "addresses", "enabled")


def rule_update(*, rule: AlertRule, **fields: Any) -> AlertRule:
    """Change `rule`'s fields (those of rule_create), checked as a new rule is."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise TypeError(f"unknown rule fields: {', '.join(sorted(unknown))}")
    for field, value in fields.items():
        setattr(rule, field, value)
    clean_rule(rule)
    rule.save()
    return rule


def rule_delete(*, rule: AlertRule) -> None:
    """Delete `rule` and its subscriptions; its notifications stay in the history under its name."""
    rule.delete()
