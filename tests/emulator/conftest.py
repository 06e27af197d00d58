"""Shared fixtures: one small emulator per session, reset (faults, log, quota, config) per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from azure.identity import ClientSecretCredential
from azure.mgmt.resourcegraph import ResourceGraphClient

from azure_emulator import Emulator

from .helpers import fetch_token

CLUSTERS = 150  # three subscriptions
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(clusters=CLUSTERS, seed=11, quota=None, workdir=tmp_path_factory.mktemp("emu"), log_bodies=True, now=NOW) as emu:
        yield emu


@pytest.fixture
def emu(shared_emulator: Emulator) -> Iterator[Emulator]:
    defaults = shared_emulator.config()
    shared_emulator.reset()
    yield shared_emulator
    shared_emulator.reset()
    shared_emulator.set_quota(defaults["quota"], retry_after=defaults["quota_retry_after"])
    shared_emulator.set_token_lifetime(defaults["token_lifetime"])
    shared_emulator.set_arm_throttle(defaults["arm_throttle"])


@pytest.fixture
def http(emu: Emulator) -> Iterator[requests.Session]:
    """A requests session that trusts only the emulator CA (REQUESTS_CA_BUNDLE would win otherwise)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = emu.ca_file
    yield session
    session.close()


@pytest.fixture
def credential(emu: Emulator) -> ClientSecretCredential:
    return ClientSecretCredential(
        emu.tenant_id,
        emu.client_id,
        emu.client_secret,
        authority=emu.base_url,
        disable_instance_discovery=True,
        connection_verify=emu.ca_file,
    )


@pytest.fixture
def graph(emu: Emulator, credential: ClientSecretCredential) -> ResourceGraphClient:
    return ResourceGraphClient(credential, base_url=emu.base_url, connection_verify=emu.ca_file, api_version="2022-10-01")


@pytest.fixture
def token(http: requests.Session, emu: Emulator) -> str:
    response = fetch_token(http, emu)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
