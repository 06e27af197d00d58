"""Scans: the history, one scan with its batches and evidence, an evidence download."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from posture.models import QueryEvidence, Scan, ScanBatch


def scan_list(*, scope: str = "", state: str = "") -> QuerySet[Scan]:
    scans = Scan.objects.select_related("scope", "requested_by").order_by("-created_at")
    if scope:
        scans = scans.filter(scope__name=scope)
    if state:
        scans = scans.filter(state=state)
    return scans


def scan_get(*, scan_id: Any) -> Scan | None:
    return Scan.objects.select_related("scope", "requested_by").filter(pk=scan_id).first()


def scan_batches(*, scan: Scan, limit: int = 500) -> list[ScanBatch]:
    return list(ScanBatch.objects.filter(scan=scan).order_by("number")[:limit])


def scan_evidence(*, scan: Scan, limit: int = 500) -> list[QueryEvidence]:
    return list(
        QueryEvidence.objects.filter(batch__scan=scan)
        .select_related("batch")
        .defer("raw", "request_ids", "batch__subscriptions")
        .order_by("batch__number", "name")[:limit]
    )


def evidence_get(*, pk: int) -> QueryEvidence | None:
    return QueryEvidence.objects.select_related("batch").filter(pk=pk).first()
