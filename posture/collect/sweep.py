"""Collect one subscription batch: every batch query, then the ARM GETs, into fact records.

Raw responses are kept as evidence exactly as received; the records are normalized at once,
page by page, so a worker never holds a whole batch of raw rows in memory.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from posture import normalize, queries
from posture.collect.client import AzureSession
from posture.models import QueryEvidence


class EvidenceWriter:
    """Streams response bodies into gzip while hashing them; one per query."""

    def __init__(self, name: str, request: str, api_version: str, scopes: dict[str, Any]) -> None:
        self.name, self.request, self.api_version, self.scopes = name, request, api_version, scopes
        self.started_at = timezone.now()
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31)
        self._chunks: list[bytes] = []
        self._sha = hashlib.sha256()
        self.requests = 0
        self.rows = 0
        self.request_ids: list[str] = []

    def add(self, raw: bytes, rows: int, request_id: str = "") -> None:
        line = raw.rstrip(b"\n") + b"\n"
        self._sha.update(line)
        self._chunks.append(self._gzip.compress(line))
        self.requests += 1
        self.rows += rows
        if request_id:
            self.request_ids.append(request_id)

    def finish(self) -> QueryEvidence:
        self._chunks.append(self._gzip.flush())
        return QueryEvidence(
            name=self.name,
            request=self.request,
            api_version=self.api_version,
            scopes=self.scopes,
            started_at=self.started_at,
            finished_at=timezone.now(),
            requests=self.requests,
            rows=self.rows,
            request_ids=self.request_ids[:2000],
            sha256=self._sha.hexdigest(),
            raw=b"".join(self._chunks),
        )


@dataclass
class BatchData:
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence: list[QueryEvidence] = field(default_factory=list)
    pages: int = 0
    rows: int = 0
    ignored_rows: int = 0


def collect_batch_data(session: AzureSession, subscriptions: list[str], *, on_page: Callable[[int], None]) -> BatchData:
    data = BatchData()
    scopes = {"subscriptions": subscriptions}

    def run(query: queries.Query, handle: Callable[[Any], None]) -> None:
        evidence = EvidenceWriter(query.name, query.text, queries.ARG_API_VERSION, scopes)
        for page in session.query(query, subscriptions=subscriptions):
            evidence.add(page.raw, len(page.rows), page.request_id)
            for row in page.rows:
                handle(row)
            data.pages += 1
            data.rows += len(page.rows)
            on_page(len(page.rows))
        data.evidence.append(evidence.finish())

    def add_cluster(row: Any) -> None:
        record = normalize.cluster_record(row)
        if record is None:
            data.ignored_rows += 1
        else:
            data.clusters[record["id"].lower()] = record

    def add_resource(row: Any) -> None:
        record = normalize.resource_record(row)
        if record is None:
            data.ignored_rows += 1
        else:
            data.resources[record["id"].lower()] = record

    def add_child(field_name: str, parse: Callable[[Any], Any]) -> Callable[[Any], None]:
        def handle(row: Any) -> None:
            child = parse(row)
            if child is None:
                data.ignored_rows += 1
                return
            owner, item = child
            target = data.clusters.get(owner) or data.resources.get(owner)
            if target is None:
                data.ignored_rows += 1  # e.g. an AKS (not Arc) cluster's extension
            else:
                target.setdefault(field_name, []).append(item)

        return handle

    run(queries.CLUSTERS, add_cluster)
    run(queries.NETWORK_RESOURCES, add_resource)
    run(queries.EXTENSIONS, add_child("extensions", normalize.extension_record))
    run(queries.POLICY_STATES, add_child("policy_states", normalize.policy_state_record))
    run(queries.ASSESSMENTS, add_child("assessments", normalize.assessment_record))
    data.evidence.append(_provisioned_instances(session, data, scopes, on_page))
    for record in [*data.clusters.values(), *data.resources.values()]:
        normalize.finish(record)
    return data


PCI_PATH = "/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default"


def _provisioned_instances(session: AzureSession, data: BatchData, scopes: dict[str, Any], on_page: Callable[[int], None]) -> QueryEvidence:
    """ARG does not index provisionedClusterInstances: GET each AKS-on-Azure-Local cluster's."""
    evidence = EvidenceWriter(
        "provisioned_cluster_instances", "GET {clusterId}" + PCI_PATH, queries.PROVISIONED_CLUSTER_API_VERSION, scopes
    )
    targets = [r for r in data.clusters.values() if (r.get("kind") or "").lower() == "provisionedcluster"]

    def fetch(record: dict[str, Any]) -> tuple[dict[str, Any], Any, bytes]:
        body, raw = session.get_resource(record["id"] + PCI_PATH, queries.PROVISIONED_CLUSTER_API_VERSION)
        return record, body, raw

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=settings.ARC_ARM_CONCURRENCY)
    try:
        pending = {pool.submit(fetch, record) for record in targets}
        while pending:
            done, pending = concurrent.futures.wait(
                pending, timeout=settings.ARC_PROGRESS_INTERVAL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                record, body, raw = future.result()  # an AzureError here fails the batch
                record["provisioned_instance"] = normalize.provisioned_instance_record(body)
                line = {"id": record["id"], "found": body is not None, "body": raw.decode("utf-8", "replace")}
                evidence.add(json.dumps(line).encode(), 1)
            on_page(0)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return evidence.finish()
