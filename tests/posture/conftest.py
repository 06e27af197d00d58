"""Fixtures of the fault-matrix tests: private services a test may restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posture.models import Scope
from posture.scans.evaluation import evaluate_scope
from tests.posture.azurite import azurite  # noqa: F401 (Azurite, for the Blob path of exports)
from tests.posture.faults import PrivateRedis
from tests.posture.mail_server import mail_server  # noqa: F401 (aiosmtpd on loopback, for the alert tests)
from tests.web.conftest import add_cluster, finished_scan, make_fleet  # noqa: F401 (make_fleet: the small evaluated fleet, for the export tests)

SMALL_FLEET = 6


@pytest.fixture
def small_fleet(db: Any) -> Scope:
    """A scope of SMALL_FLEET evaluated clusters, for the export builds."""
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    scan = finished_scan(scope, ["22222222-2222-2222-2222-222222222222"])
    for n in range(SMALL_FLEET):
        add_cluster(scope, scan, n, name=f"cluster-{n}")
    evaluate_scope(scope.pk, scan=scan)
    return scope


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
