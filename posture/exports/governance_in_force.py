"""The attestations and exceptions in force at a time, as the evidence bundle records them: who,
why, target, since, until.

A row holds only its latest version, and a revocation overwrites an exception's decision time,
so a row changed since the time asked about cannot say alone what stood then. Every change is
versioned in GovernanceEvent (posture/governance.py records the whole row after each create,
change, approve, reject and revoke): a row with no event after the time is read as it is; one
changed since is read as its last event by then recorded it (as it is, if it has no event by
then, as rows written before versioning have none). The target and its cluster never change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from posture.models import Attestation, GovernanceEvent, RiskException
from posture.timestamps import iso_utc

CHUNK = 2000
TARGET_FIELDS = ("cluster__arm_id", "cluster__name", "subscription_id", "resource_group", "tag_key", "tag_value")
# Field of a version (GovernanceEvent.data) -> the row's value it stands for, for what changes.
ATTESTATION_VERSION = {"statement": "statement", "evidence_url": "evidence_url", "created_at": "created_at", "expires_at": "expires_at"}
ATTESTATION_VERSION |= {"revoked_at": "revoked_at", "attested_by": "attested_by__username"}
EXCEPTION_VERSION = {"justification": "justification", "owner": "owner", "state": "state", "decided_at": "decided_at"}
EXCEPTION_VERSION |= {"decision_note": "decision_note", "expires_at": "expires_at"}
EXCEPTION_VERSION |= {"requested_by": "requested_by__username", "decided_by": "decided_by__username"}
TIMES = ("created_at", "expires_at", "revoked_at", "decided_at")
USERS = ("attested_by", "requested_by", "decided_by")


def attestations_in_force(at: dt.datetime) -> Iterator[dict[str, Any]]:
    """Recorded by `at`, not revoked then and not expired then: those revoked or expired since too."""
    now_in_force = Q(created_at__lte=at, expires_at__gt=at) & (Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
    rows = _candidates(Attestation.objects.all(), "attestation", now_in_force, at).values(
        "pk",
        "control",
        "statement",
        "evidence_url",
        "attested_by__username",
        "created_at",
        "expires_at",
        "revoked_at",
        "changed",
        *TARGET_FIELDS,
    )
    for version in _versions(rows, "attestation", ATTESTATION_VERSION, at):
        revoked = version["revoked_at"]
        if version["created_at"] <= at < version["expires_at"] and (revoked is None or revoked > at):
            yield {
                "id": version["pk"],
                "control": version["control"],
                "target": _target(version),
                "who": version["attested_by__username"],
                "why": version["statement"],
                "evidence_url": version["evidence_url"] or None,
                "since": iso_utc(version["created_at"]),
                "until": iso_utc(version["expires_at"]),
            }


def exceptions_in_force(at: dt.datetime) -> Iterator[dict[str, Any]]:
    """Approved by `at` and not expired then: those revoked or expired since too."""
    now_in_force = Q(state=RiskException.State.APPROVED, decided_at__lte=at, expires_at__gt=at)
    rows = _candidates(RiskException.objects.all(), "exception", now_in_force, at).values(
        "pk",
        "control",
        "justification",
        "owner",
        "state",
        "requested_by__username",
        "decided_by__username",
        "decided_at",
        "decision_note",
        "expires_at",
        "changed",
        *TARGET_FIELDS,
    )
    for version in _versions(rows, "exception", EXCEPTION_VERSION, at):
        decided = version["decided_at"]
        if version["state"] == RiskException.State.APPROVED and decided is not None and decided <= at < version["expires_at"]:
            yield {
                "id": version["pk"],
                "control": version["control"],
                "target": _target(version),
                "who": {
                    "requested_by": version["requested_by__username"],
                    "approved_by": version["decided_by__username"],
                    "owner": version["owner"],
                },
                "why": version["justification"],
                "decision_note": version["decision_note"] or None,
                "since": iso_utc(decided),
                "until": iso_utc(version["expires_at"]),
            }


def decisions_as_of(kind: str, ids: Iterable[int], fields: Sequence[str], at: dt.datetime) -> Iterator[dict[str, Any]]:
    """The attestations ("attestation") or exceptions ("exception") of `ids` with `fields` (the
    row's names, as the *_VERSION maps name them) as they stood at `at`: what a finding rebuilt as
    of then cites (a revocation since must not show its revoker as the approver)."""
    model: Any = Attestation if kind == "attestation" else RiskException
    versioned = ATTESTATION_VERSION if kind == "attestation" else EXCEPTION_VERSION
    changed = Exists(GovernanceEvent.objects.filter(kind=kind, object_id=OuterRef("pk"), at__gt=at))
    rows = model.objects.filter(pk__in=list(ids)).annotate(changed=changed).order_by("pk")
    return _versions(rows.values(*dict.fromkeys(("pk", *fields, "changed"))), kind, versioned, at)


def _candidates(rows: QuerySet[Any], kind: str, now_in_force: Q, at: dt.datetime) -> QuerySet[Any]:
    """Rows in force at `at` as they are now, and those changed since (whatever they are now)."""
    changed = Exists(GovernanceEvent.objects.filter(kind=kind, object_id=OuterRef("pk"), at__gt=at))
    return rows.annotate(changed=changed).filter(now_in_force | Q(changed=True)).order_by("pk")


def _versions(rows: QuerySet[Any], kind: str, fields: dict[str, str], at: dt.datetime) -> Iterator[dict[str, Any]]:
    """Each row as it stood at `at`: changed ones overlaid with their last version by then."""
    stream = rows.iterator(chunk_size=CHUNK)
    while chunk := list(islice(stream, CHUNK)):
        then = _last_versions(kind, [row["pk"] for row in chunk if row["changed"]], at)
        overlay = _overlay(fields, then.values())
        for row in chunk:
            data = then.get(row["pk"])
            yield row if data is None else {**row, **overlay(data)}


def _last_versions(kind: str, ids: list[int], at: dt.datetime) -> dict[int, dict[str, Any]]:
    """Object id -> the data of its last event by `at`, for those of `ids` with one."""
    if not ids:
        return {}
    events = GovernanceEvent.objects.filter(kind=kind, object_id__in=ids, at__lte=at).order_by("object_id", "at", "pk")
    return dict(events.values_list("object_id", "data"))  # a later event replaces an earlier one


def _overlay(fields: dict[str, str], versions: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Maps a version's data onto the row's names: times parsed, users by their name."""
    versions = list(versions)
    user_ids = {data.get(name) for data in versions for name in USERS if data.get(name)}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username")) if user_ids else {}

    def overlay(data: dict[str, Any]) -> dict[str, Any]:
        mapped = {}
        for name, row_name in fields.items():
            if name not in data:
                continue
            value = data[name]
            if name in TIMES:
                value = _time(value)
            elif name in USERS:
                value = names.get(value)
            mapped[row_name] = value
        return mapped

    return overlay


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _target(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": row["cluster__arm_id"] or None,
        "cluster_name": row["cluster__name"] or None,
        "subscription_id": row["subscription_id"] or None,
        "resource_group": row["resource_group"] or None,
        "tag_key": row["tag_key"] or None,
        "tag_value": row["tag_value"] or None,
    }
