"""Starting scans: the one place that creates a Scan and hands it to the workers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from posture.models import Scan, Scope
from posture.task_queue import START_SCAN, enqueue


def scan_request(*, scope: Scope, trigger: str, user: Any = None) -> tuple[Scan, bool]:
    """A pending scan for `scope`, enqueued once the transaction commits.

    Returns (scan, created). When the scope already has an unfinished scan, that one is returned
    and nothing new is queued: two sweeps of one tenant would only share its quota.
    """
    with transaction.atomic():
        Scope.objects.select_for_update().filter(pk=scope.pk).first()
        existing = Scan.objects.filter(scope=scope, state__in=[Scan.State.PENDING, Scan.State.RUNNING]).first()
        if existing is not None:
            return existing, False
        scan = Scan.objects.create(scope=scope, trigger=trigger, requested_by=user if user and user.is_authenticated else None)
        scan_id = str(scan.id)
        # Publish after commit so a worker never looks for a Scan row that is not there yet.
        transaction.on_commit(lambda: enqueue(START_SCAN, scan_id=scan_id))
    return scan, True
