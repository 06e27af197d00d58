"""The FleetSnapshot of a whole-scope evaluation: the fleet's aggregates at one moment."""

from __future__ import annotations

import datetime as dt

from posture.catalog.controls import CATALOG_VERSION
from posture.evaluate.tally import Tally
from posture.models import FleetSnapshot, Scan
from posture.store.changes import change_summary


def save_snapshot(scope_id: int, scan: Scan | None, now: dt.datetime, tally: Tally) -> None:
    aggregates = {
        "scope_id": scope_id,
        "created_at": now,
        "clusters": tally.clusters,
        "score": round(tally.score_sum / tally.scored, 1) if tally.scored else None,
        "coverage": round(tally.coverage_sum / tally.covered, 1) if tally.covered else None,
        "grades": dict(tally.grades),
        "controls": tally.controls(),
        "sections": tally.sections(),
        "paths": dict(tally.paths),
        "connectivity": dict(tally.connectivity),
        "changes": change_summary(scope_id, scan, now),
        "catalog_version": CATALOG_VERSION,
    }
    if scan is None:
        FleetSnapshot.objects.create(**aggregates)
        return
    # One snapshot per scan (a database constraint): a finish run again, say after its first
    # run died between the snapshot and closing the scan, brings that one up to date.
    FleetSnapshot.objects.update_or_create(scan=scan, defaults=aggregates)
