"""Bulk-write housekeeping on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from posture import bulk
from posture.models import Cluster


@pytest.mark.services
def test_analyze_gives_the_planner_row_counts_and_indexed_columns_but_not_free_text(postgres) -> None:
    now = timezone.now()
    Cluster.objects.bulk_create(
        Cluster(
            key=f"/subscriptions/s/resourcegroups/rg/providers/microsoft.kubernetes/connectedclusters/c{n}",
            arm_id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c{n}",
            name=f"c{n}",
            subscription_id=f"{n % 7:08d}-0000-0000-0000-000000000000",
            resource_group="rg",
            facts={"notes": "x" * 200},
            first_seen_at=now,
            last_seen_at=now,
        )
        for n in range(300)
    )
    bulk.analyze(Cluster)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Cluster._meta.db_table])
        assert cursor.fetchone()[0] == 300
        cursor.execute("SELECT attname FROM pg_stats WHERE tablename = %s", [Cluster._meta.db_table])
        columns = {row[0] for row in cursor.fetchall()}
    assert {"id", "key", "subscription_id", "scope_id", "removed_at"} <= columns
    assert not columns & {"facts", "tags", "evaluated_refs"}
