"""Azurite, Microsoft's Azure Storage emulator from npm, run by the tests for the Blob path of
built exports: its blob service on a free port, in memory, with one container."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from tests.posture.faults import free_port

ROOT = Path(__file__).resolve().parents[2]
# Azurite's published development account (its documentation's, not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "exports"


def connection_string(port: int) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"


@dataclass
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def blobs(self) -> dict[str, bytes]:
        """Every blob of the container, by name."""
        container = BlobServiceClient.from_connection_string(self.connection_string).get_container_client(CONTAINER)
        return {blob.name: container.download_blob(blob.name).readall() for blob in container.list_blobs()}


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    port = free_port()
    # The node script itself, not npx: killing npx would leave its node child listening.
    command = [str(ROOT / "node_modules/.bin/azurite-blob"), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    # The SDK speaks a newer API version than Azurite knows: --skipApiVersionCheck.
    command += ["--inMemoryPersistence", "--extentMemoryLimit", "64", "--skipApiVersionCheck", "--silent", "--disableTelemetry"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "azurite exited"
            assert time.monotonic() < deadline, "azurite did not start in 30 s"
            time.sleep(0.1)
        BlobServiceClient.from_connection_string(connection_string(port)).create_container(CONTAINER)  # not created on use
        yield Azurite(port)
    finally:
        process.kill()
        process.wait(timeout=10)
