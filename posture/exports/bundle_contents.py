"""What every evidence bundle carries besides the exports: the raw Azure responses its scans
stored, and the attestations and exceptions in force (posture/exports/governance_in_force.py).
Each reads its models in bulk and streams into an open EvidenceBundle."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from posture.exports.bundle import EvidenceBundle
from posture.exports.governance_in_force import attestations_in_force, exceptions_in_force
from posture.models import QueryEvidence
from posture.timestamps import iso_utc

EVIDENCE_SECTION = "evidence"
PRUNED_SECTION = "evidence_pruned"
ATTESTATIONS = "governance/attestations.json"
EXCEPTIONS = "governance/exceptions.json"
_RAW_PER_FETCH = 20  # gzip bodies held at once while streaming


def add_scan_evidence(bundle: EvidenceBundle, scan_ids: Iterable[Any]) -> int:
    """Adds the raw responses of the given scans exactly as stored (gzip), one file per query
    stream: evidence/scan-<id>/batch-<n>-<name>[-<part>].jsonl.gz. The manifest records each
    file's request, api-version and the SHA-256 stored at collection (of the gunzipped bytes).
    A scan with no stored response is listed under `evidence_pruned`. Returns the number of
    files added."""
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
    for scan_id in sorted(set(scan_ids) - {scan for scan, _, _ in parts}):
        # Said rather than omitted silently: an old scan's responses are pruned.
        reason = "no raw response of this scan is stored: they are kept for the last ARC_EVIDENCE_KEEP_SCANS scans of a scope"
        bundle.record(PRUNED_SECTION, {"scan": scan_id, "reason": reason})
    return added


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
