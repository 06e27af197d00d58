"""The Blob path of built exports, against Azurite (started by the tests, no mock): a build
round-trips through Blob Storage with the audit row's SHA-256, and an unreachable storage account
fails the export clearly, naming no secret and leaving nothing."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile

from posture.env import export_storage
from posture.exports import jobs
from posture.exports.filters import ExportFilters
from posture.exports.verify import verify_bundle
from posture.models import Export
from tests.posture.azurite import KEY, Azurite, connection_string
from tests.posture.conftest import SMALL_FLEET as CLUSTERS
from tests.posture.faults import free_port

pytestmark = pytest.mark.django_db


def use_azure(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, connection: str) -> Path:
    """STORAGES["exports"] as the environment configures it with ARC_EXPORT_STORAGE=azure."""
    monkeypatch.setenv("ARC_EXPORT_STORAGE", "azure")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
    monkeypatch.setenv("ARC_EXPORT_STORAGE_TIMEOUT", "5")
    monkeypatch.setenv("ARC_EXPORT_STORAGE_RETRIES", "1")
    settings.STORAGES = {**settings.STORAGES, "exports": export_storage(tmp_path)}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def build(kind: str, fmt: str, django_capture_on_commit_callbacks: Any) -> Export:
    with django_capture_on_commit_callbacks(execute=True):
        export = jobs.request_export(user=None, kind=kind, fmt=fmt, filters=ExportFilters())
    export.refresh_from_db()
    return export


def test_a_bundle_round_trips_through_blob_storage_and_still_verifies(
    small_fleet: Any,
    azurite: Azurite,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    use_azure(settings, monkeypatch, tmp_path, azurite.connection_string)
    export = build("bundle", "zip", django_capture_on_commit_callbacks)
    assert export.state == Export.State.SUCCEEDED, export.error
    blobs = azurite.blobs()
    assert list(blobs) == [jobs.storage_name(export, export.claimed_at)] == [export.file_name]
    with jobs.export_file(export) as downloaded:
        content = downloaded.read()
    assert content == blobs[export.file_name]
    assert (hashlib.sha256(content).hexdigest(), len(content)) == (export.sha256, export.size)
    assert content.startswith(b"PK") and export.rows > CLUSTERS
    downloaded_bundle = tmp_path / "downloaded.zip"
    downloaded_bundle.write_bytes(content)
    report = verify_bundle(downloaded_bundle)
    assert report.ok, report.lines()

    jobs.build_export(str(export.pk))  # a re-run: still one blob, unchanged
    assert azurite.blobs() == blobs
    stray = jobs.storage_name(export, export.created_at)  # an earlier claim's file it could not delete
    jobs.exports_storage().save(stray, ContentFile(b"an earlier claim's file"))
    assert sorted(azurite.blobs()) == sorted([stray, export.file_name])
    assert jobs.delete_expired(now=export.expires_at) == 1
    assert azurite.blobs() == {} and not Export.objects.exists()


def test_an_unreachable_storage_account_fails_the_export_clearly_and_leaves_nothing(
    small_fleet: Any, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    scratch = use_azure(settings, monkeypatch, tmp_path, connection_string(free_port()))  # nothing listens there
    export = build("findings", "csv", django_capture_on_commit_callbacks)
    assert export.state == Export.State.FAILED
    assert export.error.startswith("Could not save the export to storage: ServiceRequestError: ")
    assert "Connection refused" in export.error and KEY not in export.error
    assert (export.file_name, export.sha256, list(scratch.iterdir())) == ("", "", [])
