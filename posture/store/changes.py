"""Change events: which ones a scan already recorded, which clusters are new in it, and what
changed in a scan or a run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from posture.models import ChangeEvent, Cluster, Scan, Status

GOOD = (Status.PASS, Status.ATTESTED, Status.NOT_APPLICABLE)


def new_in_scan(scan: Scan | None, cluster_ids: list[int]) -> set[int]:
    if scan is None or scan.started_at is None:
        return set()
    return set(Cluster.objects.filter(pk__in=cluster_ids, first_seen_at__gte=scan.started_at).values_list("pk", flat=True))


def events_of_scan(scan: Scan | None, cluster_ids: list[int]) -> dict[tuple[int, str], dict[str, Any]]:
    if scan is None:
        return {}
    events = ChangeEvent.objects.filter(scan=scan, cluster_id__in=cluster_ids).values("pk", "cluster_id", "control", "from_status")
    return {(e["cluster_id"], e["control"]): e for e in events}


def change_summary(scope_id: int, scan: Scan | None, now: dt.datetime) -> dict[str, int]:
    """What changed in this scan (its batches evaluated early) or, without a scan, in this run."""
    events = ChangeEvent.objects.filter(cluster__scope_id=scope_id)
    events = events.filter(scan=scan) if scan else events.filter(scan__isnull=True, at=now)
    return {
        "events": events.count(),
        "clusters_changed": events.values("cluster_id").distinct().count(),
        # Clusters with a control that got worse (better); a cluster may count in both.
        "worse": events.filter(from_status__in=GOOD).exclude(to_status__in=GOOD).values("cluster_id").distinct().count(),
        "better": events.exclude(from_status__in=GOOD).filter(to_status__in=GOOD).values("cluster_id").distinct().count(),
    }
