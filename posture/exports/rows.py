"""Batched row readers: findings (cluster × control) and scorecards (one row per cluster).

Clusters are read in chunks by name then pk (keyset, so each chunk is one indexed query however
deep), and each chunk's results and the attestations and exceptions they cite are fetched in bulk:
memory stays constant whatever the fleet's size. Rows are plain dicts of text, numbers and None,
keyed by the kind's COLUMNS.

The scan a finding came from is the cluster's `facts_scan`: results record no scan of their own,
and a verdict is the evaluation of the facts that scan collected (re-evaluations after governance
or catalog changes read the same facts).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast

from posture.catalog.controls import Control
from posture.catalog.frameworks import Ref
from posture.exports.filters import ExportFilters
from posture.models import Attestation, Cluster, ControlResult, RiskException, Status

Progress = Callable[[int, int], None]  # (clusters done, clusters in all)
CHUNK_CLUSTERS = 2000
IDENTITY = ("cluster", "arm_id", "subscription_id", "resource_group", "location", "tags")
FINDINGS_COLUMNS = (
    *IDENTITY,
    "control",
    "title",
    "severity",
    "status",
    "reason",
    "detail",
    "evidence",
    "references_printed",
    "references_closer",
    "attestation_id",
    "attested_by",
    "attestation_statement",
    "attestation_expires_at",
    "exception_id",
    "exception_requested_by",
    "exception_approved_by",
    "exception_owner",
    "exception_justification",
    "exception_expires_at",
    "since",
    "scan_id",
)
SCORECARD_COLUMNS = (
    *IDENTITY,
    "score",
    "grade",
    "coverage",
    *(f"count_{status}" for status in Status.values),
    "network_path",
    "connectivity_status",
    "last_connectivity_at",
    "scan_id",
)
CLUSTER_FIELDS = (
    "pk",
    "name",
    "arm_id",
    "subscription_id",
    "resource_group",
    "location",
    "tags",
    "score",
    "grade",
    "coverage",
    "network_path",
    "connectivity_status",
    "last_connectivity_at",
    "facts_scan_id",
)
SHORT_NAMES = {"cis-k8s": "CIS", "nist-800-190": "NIST", "nsa-cisa": "NSA/CISA", "owasp-k8s": "OWASP", "msft-arc-network": "Microsoft"}
NOT_EVALUATED = "Not evaluated yet"


def findings_rows(filters: ExportFilters, *, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """One row per selected cluster × selected control, controls in catalog order; the status
    filter drops rows. A cluster not yet evaluated gets rows with a blank status."""
    controls = [(control, _control_columns(control)) for control in filters.controls()]
    ids = [control.id for control, _ in controls]
    for chunk in _cluster_chunks(filters, progress):
        results = ControlResult.objects.filter(cluster_id__in=[c["pk"] for c in chunk], control__in=ids)
        if filters.status:
            results = results.filter(status__in=filters.status)
        # Evidence as the database's JSON text, made canonical once per distinct value in the chunk.
        results = results.annotate(evidence_text=Cast("evidence", TextField()))
        found = {(r["cluster_id"], r["control"]): r for r in results.values(*RESULT_FIELDS, "evidence_text")}
        attestations, exceptions = _governance(found.values())
        evidence: dict[str | None, str] = {}
        for cluster in chunk:
            identity = {**_identity(cluster), "scan_id": _text(cluster["facts_scan_id"])}
            for control, columns in controls:
                result = found.get((cluster["pk"], control.id))
                if result is None and filters.status:
                    continue
                yield {
                    **identity,
                    **columns,
                    **_verdict(result, evidence),
                    **_decision(attestations.get(result and result["attestation_id"]), ATTESTATION_COLUMNS),
                    **_decision(exceptions.get(result and result["exception_id"]), EXCEPTION_COLUMNS),
                    "since": _iso(result and result["since"]),
                }


def scorecard_rows(filters: ExportFilters, *, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """One row per selected cluster: its score, grade, coverage and how many of all its
    controls are in each status (the counts the score was computed from)."""
    for chunk in _cluster_chunks(filters, progress):
        tallies = (
            ControlResult.objects.filter(cluster_id__in=[c["pk"] for c in chunk])
            .order_by()
            .values_list("cluster_id", "status")
            .annotate(n=Count("pk"))
        )
        counts: dict[int, Counter[str]] = {}
        for cluster_id, status, n in tallies:
            counts.setdefault(cluster_id, Counter())[status] = n
        for cluster in chunk:
            tally = counts.get(cluster["pk"], Counter())
            yield {
                **_identity(cluster),
                "score": cluster["score"],
                "grade": cluster["grade"],
                "coverage": cluster["coverage"],
                **{f"count_{status}": tally[status] for status in Status.values},
                "network_path": cluster["network_path"],
                "connectivity_status": cluster["connectivity_status"],
                "last_connectivity_at": _iso(cluster["last_connectivity_at"]),
                "scan_id": _text(cluster["facts_scan_id"]),
            }


RESULT_FIELDS = ("cluster_id", "control", "status", "reason", "detail", "attestation_id", "exception_id", "since")


def _cluster_chunks(filters: ExportFilters, progress: Progress | None) -> Iterator[list[dict[str, Any]]]:
    clusters: QuerySet[Cluster] = filters.clusters()
    total = clusters.count() if progress else 0
    rows = clusters.values(*CLUSTER_FIELDS)
    done = 0
    last: tuple[str, int] | None = None
    while True:
        page = rows if last is None else rows.filter(Q(name__gt=last[0]) | Q(name=last[0], pk__gt=last[1]))
        chunk = list(page[:CHUNK_CLUSTERS])
        if not chunk:
            return
        yield chunk
        done += len(chunk)
        if progress:
            progress(done, max(total, done))
        last = chunk[-1]["name"], chunk[-1]["pk"]


# Finding column → field of the attestation or exception a result cites (None when it cites none).
ATTESTATION_COLUMNS = {
    "attestation_id": "pk",
    "attested_by": "attested_by__username",
    "attestation_statement": "statement",
    "attestation_expires_at": "expires_at",
}
EXCEPTION_COLUMNS = {
    "exception_id": "pk",
    "exception_requested_by": "requested_by__username",
    "exception_approved_by": "decided_by__username",
    "exception_owner": "owner",
    "exception_justification": "justification",
    "exception_expires_at": "expires_at",
}


def _governance(results: Any) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """The attestations and exceptions a chunk's results cite: two queries at most."""
    attestation_ids = {r["attestation_id"] for r in results if r["attestation_id"]}
    exception_ids = {r["exception_id"] for r in results if r["exception_id"]}
    attestations = Attestation.objects.filter(pk__in=attestation_ids).values(*ATTESTATION_COLUMNS.values())
    exceptions = RiskException.objects.filter(pk__in=exception_ids).values(*EXCEPTION_COLUMNS.values())
    return (
        {a["pk"]: a for a in attestations} if attestation_ids else {},
        {e["pk"]: e for e in exceptions} if exception_ids else {},
    )


NO_DECISION = {id(columns): dict.fromkeys(columns) for columns in (ATTESTATION_COLUMNS, EXCEPTION_COLUMNS)}


def _decision(found: dict[str, Any] | None, columns: dict[str, str]) -> dict[str, Any]:
    if not found:
        return NO_DECISION[id(columns)]  # shared: callers only unpack it
    return {column: _iso(found[field]) if field == "expires_at" else found[field] for column, field in columns.items()}


def _identity(cluster: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": cluster["name"],
        "arm_id": cluster["arm_id"],
        "subscription_id": cluster["subscription_id"],
        "resource_group": cluster["resource_group"],
        "location": cluster["location"],
        "tags": format_tags(cluster["tags"]),
    }


def _control_columns(control: Control) -> dict[str, Any]:
    return {
        "control": control.id,
        "title": control.title,
        "severity": control.severity,
        "references_printed": "; ".join(ref.label() for ref in control.printed),
        "references_closer": format_refs(control.closer),
    }


def _verdict(result: dict[str, Any] | None, evidence: dict[str | None, str]) -> dict[str, Any]:
    if result is None:
        return {"status": "", "reason": "", "detail": NOT_EVALUATED, "evidence": ""}
    text = result["evidence_text"]
    if text not in evidence:
        value = None if text is None else json.loads(text)
        evidence[text] = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {"status": result["status"], "reason": result["reason"], "detail": result["detail"], "evidence": evidence[text]}


def format_tags(tags: dict[str, Any] | None) -> str:
    """`k=v; k=v`, keys sorted: PostgreSQL's jsonb and SQLite keep keys in different orders."""
    return "; ".join(f"{key}={value}" for key, value in sorted((tags or {}).items()))


def format_refs(refs: tuple[Ref, ...]) -> str:
    """`CIS 5.3.2; NIST 4.4.2`: each framework's short name and the section id."""
    return "; ".join(f"{SHORT_NAMES.get(ref.framework, ref.framework)} {ref.section}" for ref in refs)


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)
