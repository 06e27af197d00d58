"""Collect one subscription batch: every batch query, then the ARM GETs, into fact records.

The queries run side by side, each over a few slices of the batch's subscriptions and each slice
its own $skipToken loop: one stream of large pages cannot keep the principal's Resource Graph
quota busy. ARM GETs of AKS-on-Azure-Local instances start as soon as the clusters are known.
Raw responses are kept as evidence exactly as received; rows are normalized page by page, so no
batch of raw rows is held in memory.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from posture import normalize, queries
from posture.collect.client import AzureSession
from posture.models import QueryEvidence
from posture.store import even_parts

PCI_PATH = "/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default"
CHILD_QUERIES: dict[str, tuple[queries.Query, Callable[[Any], Any]]] = {
    "extensions": (queries.EXTENSIONS, normalize.extension_record),
    "policy_states": (queries.POLICY_STATES, normalize.policy_state_record),
    "assessments": (queries.ASSESSMENTS, normalize.assessment_record),
}


class EvidenceWriter:
    """Streams response bodies into gzip while hashing them; one per query."""

    def __init__(self, name: str, request: str, api_version: str, scopes: dict[str, Any]) -> None:
        self.name, self.request, self.api_version, self.scopes = name, request, api_version, scopes
        self.started_at = timezone.now()
        # Level 3: half the CPU of the default 6 for about 30 % more bytes; evidence is written on
        # every scan and read rarely.
        self._gzip = zlib.compressobj(3, zlib.DEFLATED, 31)
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
    children: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    evidence: list[QueryEvidence] = field(default_factory=list)
    pages: int = 0
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Set when a stream fails: the others stop at their next page instead of spending quota.
    abort: threading.Event = field(default_factory=threading.Event, repr=False)


def collect_batch_data(session: AzureSession, subscriptions: list[str], *, on_page: Callable[[int], None]) -> BatchData:
    """Everything one batch needs, or an AzureError: the first failing stream fails the batch."""
    data = BatchData()
    scopes = {"subscriptions": subscriptions}
    parts = split(subscriptions, settings.ARC_QUERY_PARTS)

    def run(query: queries.Query, handle: Callable[[Any], None], part: list[str]) -> None:
        evidence = EvidenceWriter(query.name, query.text, queries.ARG_API_VERSION, {"subscriptions": part})
        for page in session.query(query, subscriptions=part):
            if data.abort.is_set():
                return
            evidence.add(page.raw, len(page.rows), page.request_id)
            for row in page.rows:
                handle(row)
            with data.lock:
                data.pages += 1
                data.rows += len(page.rows)
            on_page(len(page.rows))
        with data.lock:
            data.evidence.append(evidence.finish())

    def keep(target: dict[str, dict[str, Any]], parse: Callable[[Any], dict[str, Any] | None]) -> Callable[[Any], None]:
        def handle(row: Any) -> None:
            record = parse(row)
            if record is not None:  # rows without a usable id cannot be attributed to anything
                target[record["id"].lower()] = record

        return handle

    def gather(field_name: str, parse: Callable[[Any], Any]) -> Callable[[Any], None]:
        found = data.children.setdefault(field_name, [])

        def handle(row: Any) -> None:
            child = parse(row)
            if child is not None:
                found.append(child)

        return handle

    handlers = [
        (queries.CLUSTERS, keep(data.clusters, normalize.cluster_record)),
        (queries.NETWORK_RESOURCES, keep(data.resources, normalize.resource_record)),
        *((query, gather(name, parse)) for name, (query, parse) in CHILD_QUERIES.items()),
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(handlers) * len(parts) + 1, thread_name_prefix="arg") as pool:
        futures = [pool.submit(run, query, handle, part) for query, handle in handlers for part in parts]
        try:
            # The instances need only the clusters; fetch them while the other queries page on.
            _wait(futures[: len(parts)], on_page)
            futures.append(pool.submit(_provisioned_instances, session, data, scopes))
            _wait(futures, on_page)
        except BaseException:
            data.abort.set()
            raise
    for name in CHILD_QUERIES:
        for owner, item in data.children.pop(name, []):
            target = data.clusters.get(owner) or data.resources.get(owner)
            if target is not None:  # else e.g. an AKS (not Arc) cluster's extension
                target.setdefault(name, []).append(item)
    for record in [*data.clusters.values(), *data.resources.values()]:
        normalize.finish(record)
    return data


# A slice smaller than this fills a page or two per query: another stream would only add requests.
MIN_SUBSCRIPTIONS_PER_PART = 25


def split(subscriptions: list[str], parts: int) -> list[list[str]]:
    """Subscriptions in up to `parts` slices, each queried by its own stream."""
    return even_parts(subscriptions, max(1, min(parts, len(subscriptions) // MIN_SUBSCRIPTIONS_PER_PART)))


def _wait(futures: list[concurrent.futures.Future[Any]], on_page: Callable[[int], None]) -> None:
    """Wait for the streams, keeping the batch's heartbeat going; the first failure is raised."""
    pending = set(futures)
    while pending:
        done, pending = concurrent.futures.wait(
            pending, timeout=settings.ARC_PROGRESS_INTERVAL_SECONDS, return_when=concurrent.futures.FIRST_EXCEPTION
        )
        for future in done:
            future.result()
        on_page(0)


def _provisioned_instances(session: AzureSession, data: BatchData, scopes: dict[str, Any]) -> None:
    """ARG does not index provisionedClusterInstances: GET each AKS-on-Azure-Local cluster's."""
    evidence = EvidenceWriter(
        "provisioned_cluster_instances", "GET {clusterId}" + PCI_PATH, queries.PROVISIONED_CLUSTER_API_VERSION, scopes
    )
    targets = [r for r in data.clusters.values() if (r.get("kind") or "").lower() == "provisionedcluster"]

    def fetch(record: dict[str, Any]) -> tuple[dict[str, Any], Any, bytes] | None:
        if data.abort.is_set():
            return None
        body, raw = session.get_resource(record["id"] + PCI_PATH, queries.PROVISIONED_CLUSTER_API_VERSION)
        return record, body, raw

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=settings.ARC_ARM_CONCURRENCY, thread_name_prefix="arm")
    try:
        for future in concurrent.futures.as_completed([pool.submit(fetch, record) for record in targets]):
            fetched = future.result()  # an AzureError here fails the batch
            if fetched is None:
                return
            record, body, raw = fetched
            record["provisioned_instance"] = normalize.provisioned_instance_record(body)
            line = {"id": record["id"], "found": body is not None, "body": raw.decode("utf-8", "replace")}
            evidence.add(json.dumps(line).encode(), 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    with data.lock:
        data.evidence.append(evidence.finish())
