"""Seeding for bench/web.py: a large evaluated fleet in PostgreSQL, through the production code.

The emulator's fleet generator and KQL engine answer every batch query in-process,
posture.scans.sweep.collect_batch_data normalizes the rows as a scan would, posture.store.facts
writes them and evaluate_scope scores them. Two scans are stored (the second after a few percent of
clusters drifted), plus older snapshots for the trend chart.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from typing import Any

PASSWORD = "bench password for the web dashboard"  # noqa: S105 - a throwaway benchmark database
USERNAME = "bench-admin"
BATCH_SUBSCRIPTIONS = 300


class FleetSession:
    """Stands in for posture.collect.client.AzureSession: the emulator's KQL engine answers each
    query from the generated fleet, in pages of 1,000 rows, without HTTP."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet
        self.compiled: dict[str, Any] = {}

    def query(self, query: Any, *, subscriptions: list[str] | None = None, management_groups: list[str] | None = None) -> Iterator[Any]:
        from azure_emulator.arg import TABLE_SCHEMAS
        from azure_emulator.kql import compile_query
        from posture.collect.client import Page

        compiled = self.compiled.get(query.name) or self.compiled.setdefault(query.name, compile_query(query.text, TABLE_SCHEMAS))
        rows = compiled.run(self.fleet.rows(compiled.table, subscriptions or [], tenant_rows=False))
        for start in range(0, max(len(rows), 1), 1000):
            page = rows[start : start + 1000]
            yield Page(rows=page, raw=json.dumps({"count": len(page), "data": page}, default=str).encode(), request_id="bench")

    def get_resource(self, resource_id: str, api_version: str) -> tuple[dict[str, Any] | None, bytes]:
        from posture.scans.sweep import PCI_PATH

        body = self.fleet.provisioned_cluster_instances.get(resource_id[: -len(PCI_PATH)].lower())
        return body, json.dumps(body).encode()


def scan_fleet(scope: Any, fleet: Any, subscriptions: list[str]) -> Any:
    """One scan of every subscription, stored batch by batch as a scan does, then evaluated."""
    from django.db import transaction
    from django.utils import timezone

    from posture.models import QueryEvidence, Scan, ScanBatch
    from posture.scans.evaluation import evaluate_scope
    from posture.scans.sweep import collect_batch_data
    from posture.store import facts as store

    started = timezone.now()
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, trigger=Scan.Trigger.COMMAND, started_at=started)
    session = FleetSession(fleet)
    clusters = 0
    batches = [subscriptions[i : i + BATCH_SUBSCRIPTIONS] for i in range(0, len(subscriptions), BATCH_SUBSCRIPTIONS)]
    for number, subs in enumerate(batches, start=1):
        data = collect_batch_data(session, subs, on_page=lambda rows: None)
        now = timezone.now()
        with transaction.atomic():
            batch = ScanBatch.objects.create(
                scan=scan,
                number=number,
                subscriptions=subs,
                state=ScanBatch.State.DONE,
                attempts=1,
                finished_at=now,
                clusters=len(data.clusters),
                rows=data.rows,
                pages=data.pages,
                requests=data.pages,
            )
            store.store_clusters(data.clusters, scan, now)
            store.store_resources(data.resources, scan, now)
            for evidence in data.evidence:
                evidence.batch = batch
            QueryEvidence.objects.bulk_create(data.evidence)
        clusters += len(data.clusters)
        print(f"  batch {number}/{len(batches)}: {len(data.clusters):,} clusters", flush=True)
    store.mark_removed(scan, set(subscriptions), timezone.now())
    stats = evaluate_scope(scope.pk, scan=scan)
    Scan.objects.filter(pk=scan.pk).update(
        state=Scan.State.SUCCEEDED,
        finished_at=timezone.now(),
        subscriptions=len(subscriptions),
        batches_total=len(batches),
        batches_done=len(batches),
        clusters=clusters,
    )
    print(f"  evaluated {stats.clusters:,} clusters, {stats.change_events:,} changes in {stats.seconds:.1f} s", flush=True)
    return scan


def drift(fleet: Any, share: float, seed: int) -> int:
    """Some clusters go offline, others turn workload identity on: the second scan sees drift."""
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    changed = 0
    for row in list(fleet.clusters()):
        if rng.random() >= share:
            continue
        if rng.random() < 0.5:
            silent = (datetime.now(UTC) - timedelta(days=3)).isoformat()
            patch = {"properties": {"connectivityStatus": "Offline", "lastConnectivityTime": silent}}
        else:
            patch = {"properties": {"securityProfile": {"workloadIdentity": {"enabled": True}}}}
        fleet.update_cluster(row["id"], patch)
        changed += 1
    return changed


def history(scope: Any, points: int) -> None:
    """Older snapshots for the trend chart (copies of the first one, spread over past days)."""
    from posture.models import FleetSnapshot

    first = FleetSnapshot.objects.filter(scope=scope).order_by("created_at").first()
    rng = random.Random(1)
    FleetSnapshot.objects.bulk_create(
        FleetSnapshot(
            scope=scope,
            created_at=first.created_at - dt.timedelta(hours=6 * n),
            clusters=first.clusters,
            score=round(max(0.0, (first.score or 0) - n * 0.05 + rng.uniform(-0.5, 0.5)), 1),
            coverage=round(max(0.0, (first.coverage or 0) - n * 0.1), 1),
            grades=first.grades,
            controls=first.controls,
            sections=first.sections,
            paths=first.paths,
            connectivity=first.connectivity,
            changes={},
            catalog_version=first.catalog_version,
        )
        for n in range(1, points + 1)
    )


def seed(clusters: int, seed_value: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from azure_emulator import generate_fleet
    from posture.models import Scope
    from posture.roles import assign_role

    call_command("migrate", "--noinput", verbosity=0)
    began = time.monotonic()
    fleet = generate_fleet(clusters, seed_value)
    print(
        f"fleet: {fleet.cluster_count:,} clusters in {len(fleet.subscriptions)} subscriptions ({time.monotonic() - began:.0f} s)",
        flush=True,
    )
    scope = Scope.objects.create(name="bench", tenant_id=fleet.tenant_id)
    subscriptions = sorted(fleet.subscriptions)
    print("scan 1", flush=True)
    scan_fleet(scope, fleet, subscriptions)
    print(f"scan 2 ({drift(fleet, 0.04, seed_value):,} clusters drifted)", flush=True)
    scan_fleet(scope, fleet, subscriptions)
    history(scope, 40)
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    assign_role(user, "admin")
    with connection.cursor() as cursor:  # what autovacuum would have done by now
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded in {time.monotonic() - began:.0f} s", flush=True)


def table_sizes() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_size_pretty(pg_relation_size(oid)), pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
            "WHERE relname IN ('posture_cluster', 'posture_controlresult') ORDER BY relname"
        )
        return ", ".join(f"{name} heap {heap} (total {total})" for name, heap, total in cursor.fetchall())
