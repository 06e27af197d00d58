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

from posture import normalize
from posture.collect import queries
from posture.collect.client import AzureSession
from posture.models import QueryEvidence
from posture.normalize import shapes

PCI_PATH = queries.PROVISIONED_CLUSTER_INSTANCE_PATH
CHILD_QUERIES: dict[str, tuple[queries.Query, Callable[[Any], Any]]] = {
    "extensions": (queries.EXTENSIONS, normalize.extension_record),
    "policy_states": (queries.POLICY_STATES, normalize.policy_state_record),
    "assessments": (queries.ASSESSMENTS, normalize.assessment_record),
}


def even_parts(items: list[Any], count: int) -> list[list[Any]]:
    """`items` in `count` consecutive parts whose sizes differ by one at most."""
    step, extra = divmod(len(items), count)
    bounds = [n * step + min(n, extra) for n in range(count + 1)]
    return [items[bounds[n] : bounds[n + 1]] for n in range(count)]


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
    # Rows refused as damaged (posture/normalize/shapes.py), by the cluster or resource they describe:
    # {key: {"id": arm id, "issues": [...]}}. Their last good facts stay.
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused_rows: int = 0
    # Damaged rows that name nothing this batch holds: reported on the scan only.
    unattributed: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    rows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Set when a stream fails: the others stop at their next page instead of spending quota.
    abort: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def refused_clusters(self) -> dict[str, dict[str, Any]]:
        return {key: entry for key, entry in self.refused.items() if entry["kind"] == "cluster"}

    @property
    def cluster_count(self) -> int:
        """Clusters seen, whether their rows were accepted or refused."""
        return len(self.clusters) + len(self.refused_clusters)

    def refuse(self, query: str, owner_id: Any, issues: list[dict[str, str]]) -> None:
        entries = [{"query": query, **issue} for issue in issues]
        with self.lock:
            self.refused_rows += 1
            if not isinstance(owner_id, str):
                self.unattributed.extend(entries)
                del self.unattributed[MAX_UNATTRIBUTED:]
                return
            entry = self.refused.setdefault(owner_id.lower(), {"id": owner_id, "kind": None, "issues": [], "queries": set()})
            entry["queries"].add(query)
            entry["issues"].extend(entries[: MAX_ISSUES_PER_RECORD - len(entry["issues"])])

    def settle_refusals(self) -> None:
        """A cluster or resource with any refused row keeps its last good facts: its other rows
        would store a picture with a hole in it. A refusal naming nothing here is unattributed."""
        for key in list(self.refused):
            entry = self.refused[key]
            if key in self.clusters or (queries.CLUSTERS.name in entry["queries"] and normalize.CLUSTER_SEGMENT in key):
                entry["kind"] = "cluster"
                entry["id"] = self.clusters.pop(key, entry)["id"]
            elif key in self.resources or queries.NETWORK_RESOURCES.name in entry["queries"]:
                entry["kind"] = "resource"
                entry["id"] = self.resources.pop(key, entry)["id"]
            else:
                self.unattributed.extend(self.refused.pop(key)["issues"])
        del self.unattributed[MAX_UNATTRIBUTED:]


MAX_ISSUES_PER_RECORD = 20
MAX_UNATTRIBUTED = 20


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

    def keep(target: dict[str, dict[str, Any]], parse: Callable[[Any], dict[str, Any] | None], shape: str) -> Callable[[Any], None]:
        def handle(row: Any) -> None:
            issues = shapes.issues(shape, row)
            if issues:
                data.refuse(shape, row["id"] if isinstance(row, dict) and normalize.arm_id(row.get("id")) else None, issues)
                return
            record = parse(row)
            if record is not None:  # rows without a usable id cannot be attributed to anything
                target[record["id"].lower()] = record

        return handle

    def gather(field_name: str, parse: Callable[[Any], Any], shape: str) -> Callable[[Any], None]:
        found = data.children.setdefault(field_name, [])

        def handle(row: Any) -> None:
            issues = shapes.issues(shape, row)
            if issues:
                data.refuse(shape, normalize.owner_of_child(row.get("id")) if isinstance(row, dict) else None, issues)
                return
            child = parse(row)
            if child is not None:
                found.append(child)

        return handle

    handlers = [
        (queries.CLUSTERS, keep(data.clusters, normalize.cluster_record, queries.CLUSTERS.name)),
        (queries.NETWORK_RESOURCES, keep(data.resources, normalize.resource_record, queries.NETWORK_RESOURCES.name)),
        *((query, gather(name, parse, query.name)) for name, (query, parse) in CHILD_QUERIES.items()),
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
    data.settle_refusals()
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
            issues = shapes.issues("provisioned_cluster_instance", body) if body is not None else []
            if issues:
                data.refuse("provisioned_cluster_instance", record["id"], issues)
            record["provisioned_instance"] = normalize.provisioned_instance_record(body)
            line = {"id": record["id"], "found": body is not None, "body": raw.decode("utf-8", "replace")}
            evidence.add(json.dumps(line).encode(), 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    with data.lock:
        data.evidence.append(evidence.finish())
