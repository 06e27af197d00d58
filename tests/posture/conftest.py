"""Fixtures of the fault-matrix tests: private services a test may restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.posture.faults import PrivateRedis
from tests.web.conftest import make_fleet  # noqa: F401 (the small evaluated fleet, for the export tests)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()
