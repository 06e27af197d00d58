"""What every evidence bundle carries besides the exports: the raw Azure responses its scans
stored, and the attestations and exceptions in force. Each reads its models in bulk and streams
into an open EvidenceBundle."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q

from posture.exports.bundle import EvidenceBundle, iso_utc
from posture.models import Attestation, QueryEvidence, RiskException

EVIDENCE_SECTION = "evidence"
ATTESTATIONS = "governance/attestations.json"
EXCEPTIONS = "governance/exceptions.json"
_RAW_PER_FETCH = 20  # gzip bodies held at once while streaming


def add_scan_evidence(bundle: EvidenceBundle, scan_ids: Iterable[Any]) -> int:
    """Adds the raw responses of the given scans exactly as stored (gzip), one file per query
    stream: evidence/scan-<id>/batch-<n>-<name>[-<part>].jsonl.gz. The manifest records each
    file's request, api-version and the SHA-256 stored at collection (of the gunzipped bytes).
    Returns the number of files added."""
    scan_ids = [str(scan_id) for scan_id in scan_ids]
    bundle.scan_ids.update(scan_ids)
    rows = (
        QueryEvidence.objects.filter(batch__scan_id__in=scan_ids)
        .order_by("batch__scan_id", "batch__number", "name", "pk")
        .values(
            "batch__scan_id",
            "batch__number",
            "name",
            "request",
            "api_version",
            "scopes",
            "started_at",
            "finished_at",
            "requests",
            "rows",
            "request_ids",
            "sha256",
            "raw",
        )
    )
    parts: Counter[tuple[str, int, str]] = Counter()
    added = 0
    for row in rows.iterator(chunk_size=_RAW_PER_FETCH):
        stream = (str(row["batch__scan_id"]), row["batch__number"], row["name"])
        parts[stream] += 1
        suffix = f"-{parts[stream]}" if parts[stream] > 1 else ""
        path = f"evidence/scan-{stream[0]}/batch-{stream[1]}-{stream[2]}{suffix}.jsonl.gz"
        bundle.add(path, bytes(row["raw"]), rows=row["rows"])
        bundle.record(
            EVIDENCE_SECTION,
            {
                "path": path,
                "scan": stream[0],
                "batch": stream[1],
                "name": row["name"],
                "request": row["request"],
                "api_version": row["api_version"],
                "scopes": row["scopes"],
                "started_at": iso_utc(row["started_at"]),
                "finished_at": iso_utc(row["finished_at"]),
                "requests": row["requests"],
                "rows": row["rows"],
                "request_ids": row["request_ids"],
                "content_sha256": row["sha256"],
            },
        )
        added += 1
    return added


def _target(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": row["cluster__arm_id"] or None,
        "cluster_name": row["cluster__name"] or None,
        "subscription_id": row["subscription_id"] or None,
        "resource_group": row["resource_group"] or None,
        "tag_key": row["tag_key"] or None,
        "tag_value": row["tag_value"] or None,
    }


_TARGET_FIELDS = ("cluster__arm_id", "cluster__name", "subscription_id", "resource_group", "tag_key", "tag_value")


def attestations_in_force(at: dt.datetime) -> Iterator[dict[str, Any]]:
    rows = (
        Attestation.objects.filter(created_at__lte=at, expires_at__gt=at)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
        .order_by("pk")
        .values("pk", "control", "statement", "evidence_url", "attested_by__username", "created_at", "expires_at", *_TARGET_FIELDS)
    )
    for row in rows.iterator(chunk_size=2000):
        yield {
            "id": row["pk"],
            "control": row["control"],
            "target": _target(row),
            "who": row["attested_by__username"],
            "why": row["statement"],
            "evidence_url": row["evidence_url"] or None,
            "since": iso_utc(row["created_at"]),
            "until": iso_utc(row["expires_at"]),
        }


def exceptions_in_force(at: dt.datetime) -> Iterator[dict[str, Any]]:
    """Approved before `at` and not expired by then. A revocation overwrites the decision time,
    so revoked exceptions are left out even for an earlier `at`."""
    rows = (
        RiskException.objects.filter(state=RiskException.State.APPROVED, decided_at__lte=at, expires_at__gt=at)
        .order_by("pk")
        .values(
            "pk",
            "control",
            "justification",
            "owner",
            "requested_by__username",
            "decided_by__username",
            "decided_at",
            "decision_note",
            "expires_at",
            *_TARGET_FIELDS,
        )
    )
    for row in rows.iterator(chunk_size=2000):
        yield {
            "id": row["pk"],
            "control": row["control"],
            "target": _target(row),
            "who": {"requested_by": row["requested_by__username"], "approved_by": row["decided_by__username"], "owner": row["owner"]},
            "why": row["justification"],
            "decision_note": row["decision_note"] or None,
            "since": iso_utc(row["decided_at"]),
            "until": iso_utc(row["expires_at"]),
        }


class _JsonArray:
    """Streams records as one JSON array, counting them."""

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.records = records
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b"["
        for record in self.records:
            yield (b",\n" if self.count else b"\n") + json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")
            self.count += 1
        yield b"\n]\n"


def add_governance(bundle: EvidenceBundle, at: dt.datetime) -> None:
    """Adds the attestations and the exceptions in force at `at`: who, why, target, until."""
    for name, records in ((ATTESTATIONS, attestations_in_force(at)), (EXCEPTIONS, exceptions_in_force(at))):
        array = _JsonArray(records)
        with bundle.open(name) as out:
            for chunk in array:
                out.write(chunk)
            out.rows = array.count
