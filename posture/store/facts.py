"""Persisting collected records: bulk writes, and only what changed.

Called inside the transaction that completes a batch, so a batch's data lands whole or not at
all. Records whose hash is unchanged are only marked as seen, in one UPDATE per chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Model

from posture import normalize
from posture.models import AzureResource, Cluster, Scan
from posture.models.inventory import CLUSTER_UPDATE_FIELDS
from posture.store import bulk, cluster_history

# Below SQLite's bound-parameter limit and small enough for PostgreSQL to plan quickly.
CHUNK = 2000


def chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_hashes(model: type[Model], hash_field: str, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in chunks(keys):
        found.update(model.objects.filter(key__in=part).values_list("key", hash_field))  # type: ignore[attr-defined]
    return found


def _mark_seen(model: type[Model], keys: Iterable[str], scan: Scan, now: dt.datetime, **also: Any) -> None:
    for part in chunks(list(keys)):
        model.objects.filter(key__in=part).update(  # type: ignore[attr-defined]
            last_seen_scan=scan, last_seen_at=now, removed_at=None, scope_id=scan.scope_id, **also
        )


def _cluster_row(
    record: dict[str, Any], digest: str, scan: Scan, now: dt.datetime, problems: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    last = record["last_connectivity_time"]
    return {
        "key": record["id"].lower(),
        "arm_id": record["id"][:1024],
        "name": record["name"][:260],
        "subscription_id": record["subscription_id"][:36],
        "resource_group": (record["resource_group"] or "")[:90],
        "location": record["location"],
        "tags": record["tags"],
        "scope_id": scan.scope_id,
        "kind": (record["kind"] or "")[:64],
        "distribution": (record["distribution"] or "")[:64],
        "infrastructure": (record["infrastructure"] or "")[:64],
        "connectivity_status": (record["connectivity_status"] or "")[:32],
        "last_connectivity_at": normalize.parse_time(last) if last else None,
        "network_path": normalize.network_path(record),
        "facts": record,
        "facts_hash": digest,
        "facts_scan_id": scan.pk,
        "last_seen_scan_id": scan.pk,
        "first_seen_at": now,
        "last_seen_at": now,
        "removed_at": None,
        "data_problems": problems or [],
    }


def _changed(model: type[Model], hash_field: str, records: dict[str, dict[str, Any]]) -> tuple[dict[str, str], list[str], dict[str, str]]:
    digests = {key: normalize.fact_hash(record) for key, record in records.items()}
    existing = _existing_hashes(model, hash_field, list(records))
    changed = [key for key, digest in digests.items() if existing.get(key) != digest]
    return digests, changed, existing


def store_clusters(
    records: dict[str, dict[str, Any]], scan: Scan, now: dt.datetime, refused: dict[str, dict[str, Any]] | None = None
) -> int:
    """Upsert changed clusters, mark the rest seen; returns how many were written.

    A refused cluster (a damaged row, see posture/normalize/shapes.py) keeps its last good facts and is
    only marked seen, with the reasons; one never stored before is stored with every fact unknown.
    """
    digests, changed, existing = _changed(Cluster, "facts_hash", records)
    rows = [_cluster_row(records[key], digests[key], scan, now) for key in changed]
    refused = refused or {}
    known = _existing_hashes(Cluster, "facts_hash", list(refused))
    for key, entry in refused.items():
        if key not in known:
            unknown = normalize.finish(normalize.cluster_record({"id": entry["id"]}) or {})
            if unknown:
                rows.append(_cluster_row(unknown, normalize.fact_hash(unknown), scan, now, entry["issues"]))
    if rows:
        # The stored rows this upsert rewrites: their description's history, where it changes.
        cluster_history.record_replaced((row for row in rows if row["key"] in existing), by="key", scan_id=scan.pk, now=now)
        bulk.upsert(Cluster, tuple(rows[0]), rows, conflict=("key",), update=CLUSTER_UPDATE_FIELDS)
    _mark_seen(Cluster, (key for key in records if existing.get(key) == digests[key]), scan, now, data_problems=[])
    for key in known:  # rare, and each has its own problems: one UPDATE each
        _mark_seen(Cluster, [key], scan, now, data_problems=refused[key]["issues"])
    return len(rows) + len(known)


def store_resources(records: dict[str, dict[str, Any]], scan: Scan, now: dt.datetime, refused: Iterable[str] = ()) -> int:
    """As store_clusters; a refused resource keeps its last good data and is only marked seen."""
    _mark_seen(AzureResource, refused, scan, now)
    digests, changed, existing = _changed(AzureResource, "data_hash", records)
    rows = [
        {
            "key": key,
            "arm_id": records[key]["id"][:1024],
            "type": records[key]["type"][:128],
            "name": records[key]["name"][:260],
            "subscription_id": records[key]["subscription_id"][:36],
            "location": records[key]["location"],
            "scope_id": scan.scope_id,
            "data": records[key],
            "data_hash": digests[key],
            "last_seen_scan_id": scan.pk,
            "first_seen_at": now,
            "last_seen_at": now,
            "removed_at": None,
        }
        for key in changed
    ]
    if rows:
        bulk.upsert(
            AzureResource,
            tuple(rows[0]),
            rows,
            conflict=("key",),
            update=(
                "arm_id",
                "type",
                "name",
                "subscription_id",
                "location",
                "scope_id",
                "data",
                "data_hash",
                "last_seen_scan_id",
                "last_seen_at",
                "removed_at",
            ),
        )
    _mark_seen(AzureResource, (key for key in records if existing.get(key) == digests[key]), scan, now)
    return len(changed)


def store_batch(data: Any, scan: Scan, now: dt.datetime) -> int:
    """A collected batch (posture/scans/sweep.py BatchData): clusters, resources, and the
    account of refused rows; returns how many rows were written."""
    resources = [key for key, entry in data.refused.items() if entry["kind"] == "resource"]
    written = store_clusters(data.clusters, scan, now, data.refused_clusters) + store_resources(data.resources, scan, now, resources)
    record_data_problems(scan, data)
    return written


def data_problem_warnings(scan: Scan) -> list[str]:
    account = scan.data_problems or {}
    if not account.get("rows"):
        return []
    return [
        f"{account['rows']} Resource Graph row(s) were refused as damaged (columns missing or of the wrong type): "
        f"{account.get('clusters', 0)} cluster(s) and {account.get('resources', 0)} related resource(s) keep their last good data."
    ]


MAX_EXAMPLES = 50


def record_data_problems(scan: Scan, data: Any) -> None:
    """Add a batch's refused rows to the scan's account (in the batch's transaction: concurrent
    batches take turns on the scan's row)."""
    if not data.refused_rows:
        return
    locked = Scan.objects.select_for_update().only("data_problems").get(pk=scan.pk)
    account = {"rows": 0, "clusters": 0, "resources": 0, "examples": [], **(locked.data_problems or {})}
    account["rows"] += data.refused_rows
    account["clusters"] += len(data.refused_clusters)
    account["resources"] += len(data.refused) - len(data.refused_clusters)
    examples = [{"id": entry["id"][:300], **issue} for entry in data.refused.values() for issue in entry["issues"][:3]]
    account["examples"] = (account["examples"] + examples + [{"id": "", **issue} for issue in data.unattributed])[:MAX_EXAMPLES]
    Scan.objects.filter(pk=scan.pk).update(data_problems=account)


def mark_removed(scan: Scan, subscriptions: set[str], now: dt.datetime) -> int:
    """After a complete scan: what the scanned subscriptions held but the scan did not see is gone.

    Only subscriptions the scan actually read count: a subscription that vanished from the
    listing (lost permission, moved management group) says nothing about its clusters.
    """
    removed = 0
    for part in chunks(sorted(subscriptions)):
        removed += (
            Cluster.objects.filter(scope_id=scan.scope_id, removed_at__isnull=True, subscription_id__in=part)
            .exclude(last_seen_scan=scan)
            .update(removed_at=now)
        )
        AzureResource.objects.filter(scope_id=scan.scope_id, removed_at__isnull=True, subscription_id__in=part).exclude(
            last_seen_scan=scan
        ).update(removed_at=now)
    return removed
