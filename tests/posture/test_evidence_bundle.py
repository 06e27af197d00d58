"""The evidence bundle: streamed files with their digests, the raw evidence of a real scan of the
emulator fleet, governance in force, a signed manifest, and the key that signs it."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.utils import timezone

import posture
from posture.catalog.controls import CATALOG_VERSION
from posture.collect.queries import ALL_QUERIES, ARG_API_VERSION
from posture.exports import signing
from posture.exports.bundle import BundleError, EvidenceBundle
from posture.exports.bundle_contents import add_governance, add_scan_evidence
from posture.exports.verify import verify_bundle
from posture.models import Attestation, Cluster, QueryEvidence, RiskException, Scan
from posture.scans.request import scan_request

ROOT = Path(__file__).resolve().parents[2]
RAW_KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def embedded_key_in_tmp(settings: Any, tmp_path: Path) -> Path:
    settings.EVIDENCE_SIGNING_KEY = None
    settings.EVIDENCE_SIGNING_KEY_PATH = tmp_path / "var" / "evidence_signing_key"
    return settings.EVIDENCE_SIGNING_KEY_PATH


def build(path: Path, files: dict[str, bytes], **fields: Any) -> Path:
    with EvidenceBundle(
        path, scope={"name": "emulated"}, filters={"grade": "F"}, as_of=dt.datetime(2026, 11, 1, tzinfo=dt.UTC), **fields
    ) as bundle:
        for name, data in files.items():
            bundle.add(name, data)
    return path


def manifest_of(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as bundle:
        return json.loads(bundle.read("manifest.json"))


def test_a_bundle_records_every_file_with_its_digest_and_verifies(tmp_path) -> None:
    files = {"findings.csv": b"cluster,control\n=cmd,ARC-1\n", "reports/cis.html": "<h1>CIS ✓</h1>".encode()}
    path = build(tmp_path / "bundle.zip", files, scan_ids=["b", "a"])
    manifest = manifest_of(path)
    assert manifest["files"] == [
        {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in sorted(files.items())
    ]
    assert (manifest["format_version"], manifest["as_of"], manifest["scans"]) == (1, "2026-11-01T00:00:00Z", ["a", "b"])
    assert (manifest["scope"], manifest["filters"]) == ({"name": "emulated"}, {"grade": "F"})
    assert manifest["product"]["version"] == posture.__version__ and manifest["catalog_version"] == CATALOG_VERSION
    kql = {q["name"]: (q["kql"], q["api_version"]) for q in manifest["queries"] if "kql" in q}
    assert kql == {q.name: (q.text, ARG_API_VERSION) for q in ALL_QUERIES}
    assert manifest["signature"]["key_id"] == signing.key_id(signing.public_key_pem())
    with zipfile.ZipFile(path) as bundle:
        raw = bundle.read("manifest.json")
        assert raw == json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False, indent=2).encode() + b"\n"
        assert signing.verify(bundle.read("public_key.pem"), raw, base64.b64decode(bundle.read("manifest.sig")))
    assert verify_bundle(path).ok


def test_files_are_streamed_from_iterables_file_objects_and_text_writers(tmp_path) -> None:
    with EvidenceBundle(tmp_path / "b.zip", scope={}, filters={}, as_of=timezone.now()) as bundle:
        bundle.add("chunks.bin", (bytes([i]) * 1000 for i in range(50)))
        bundle.add("file.bin", io.BytesIO(b"x" * 3_000_000))
        with bundle.open("text.csv") as out:
            text = io.TextIOWrapper(out, encoding="utf-8", newline="")
            text.write("a,b\r\n1,é\r\n")
            text.flush()
            text.detach()
            out.rows = 1
    entries = {entry["path"]: entry for entry in manifest_of(tmp_path / "b.zip")["files"]}
    assert entries["chunks.bin"]["size"] == 50_000 and entries["file.bin"]["size"] == 3_000_000
    assert entries["text.csv"] == {
        "path": "text.csv",
        "rows": 1,
        "size": 11,
        "sha256": hashlib.sha256("a,b\r\n1,é\r\n".encode()).hexdigest(),
    }


def test_a_failed_build_leaves_no_file_behind(tmp_path) -> None:
    target = tmp_path / "out" / "bundle.zip"
    with pytest.raises(RuntimeError), EvidenceBundle(target, scope={}, filters={}, as_of=timezone.now()) as bundle:
        bundle.add("half.csv", b"a")
        raise RuntimeError("worker stopped")
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape.csv", "/abs.csv", "manifest.json", "a//b", "dup.csv"])
def test_a_bad_or_repeated_file_name_is_refused(tmp_path, name) -> None:
    with pytest.raises(BundleError), EvidenceBundle(tmp_path / "b.zip", scope={}, filters={}, as_of=timezone.now()) as bundle:
        bundle.add("dup.csv", b"1")
        bundle.add(name, b"2")
    assert not (tmp_path / "b.zip").exists()


def test_the_embedded_default_creates_a_private_key_once_and_reuses_it(tmp_path, embedded_key_in_tmp) -> None:
    assert not embedded_key_in_tmp.exists()
    first = signing.public_key_pem()
    assert embedded_key_in_tmp.stat().st_mode & 0o777 == 0o600
    stored = embedded_key_in_tmp.read_bytes()
    assert signing.public_key_pem() == first and embedded_key_in_tmp.read_bytes() == stored
    assert [p.name for p in embedded_key_in_tmp.parent.iterdir()] == ["evidence_signing_key"]  # no temporary left


def test_a_key_from_the_environment_signs_and_is_published(settings, viewer_client) -> None:
    settings.EVIDENCE_SIGNING_KEY = RAW_KEY
    expected = Ed25519PrivateKey.from_private_bytes(RAW_KEY).public_key()
    pem = expected.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    assert signing.public_key_pem() == pem
    assert signing.verify(pem, b"manifest", signing.sign(b"manifest"))
    assert not signing.verify(pem, b"manifest!", signing.sign(b"manifest"))
    assert not settings.EVIDENCE_SIGNING_KEY_PATH.exists()  # no embedded key made
    response = viewer_client.get("/evidence/public-key.pem")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert response.content == pem
    assert response["X-Key-Id"] == "sha256:" + hashlib.sha256(expected.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


@pytest.mark.parametrize("via_file", [False, True])
def test_settings_read_the_key_from_the_variable_or_its_file(tmp_path, via_file) -> None:
    encoded = base64.b64encode(RAW_KEY).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "DJANGO_"))}
    if via_file:
        (tmp_path / "key").write_text(encoded + "\n")
        env["EVIDENCE_SIGNING_KEY_FILE"] = str(tmp_path / "key")
    else:
        env["EVIDENCE_SIGNING_KEY"] = encoded
    code = "from posture.exports import signing; print(signing.key_id(signing.public_key_pem()))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "ARC_VAR_DIR": str(tmp_path / "var")},
    )
    assert result.returncode == 0, result.stderr
    raw_public = Ed25519PrivateKey.from_private_bytes(RAW_KEY).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert result.stdout.strip() == "sha256:" + hashlib.sha256(raw_public).hexdigest()
    assert encoded not in result.stdout + result.stderr
    assert not (tmp_path / "var" / "evidence_signing_key").exists()


@pytest.mark.django_db(transaction=True)
def test_raw_evidence_of_a_real_scan_goes_in_as_stored(make_emulator, emulator_scope, tmp_path) -> None:
    scan, created = scan_request(scope=emulator_scope(make_emulator(clusters=40)), trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert created and scan.state == Scan.State.SUCCEEDED, scan.error
    path = tmp_path / "bundle.zip"
    with EvidenceBundle(path, scope={"name": scan.scope.name}, filters={}, as_of=timezone.now()) as bundle:
        added = add_scan_evidence(bundle, [scan.pk])
    stored = list(QueryEvidence.objects.filter(batch__scan=scan))
    assert added == len(stored) > 5
    manifest = manifest_of(path)
    assert manifest["scans"] == [str(scan.pk)]
    recorded = {entry["path"]: entry for entry in manifest["evidence"]}
    assert sorted(recorded) == sorted(entry["path"] for entry in manifest["files"])
    assert all(p.startswith(f"evidence/scan-{scan.pk}/batch-") and p.endswith(".jsonl.gz") for p in recorded)
    with zipfile.ZipFile(path) as bundle:
        contents = {entry["content_sha256"]: bundle.read(p) for p, entry in recorded.items()}
    # Exactly the stored gzip, and its stored SHA-256 is that of the gunzipped bytes.
    assert sorted(contents.values()) == sorted(bytes(e.raw) for e in stored)
    assert all(hashlib.sha256(gzip.decompress(data)).hexdigest() == digest for digest, data in contents.items())
    clusters = next(entry for entry in recorded.values() if entry["name"] == "clusters")
    assert clusters["api_version"] == ARG_API_VERSION and "connectedclusters" in clusters["request"]
    assert sum(entry["rows"] for entry in recorded.values() if entry["name"] == "clusters") == 40
    assert verify_bundle(path).ok


@pytest.mark.django_db
def test_governance_in_force_at_a_time_is_bundled_with_who_why_target_and_until(tmp_path, analyst, admin_user) -> None:
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    cluster = Cluster.objects.create(
        key="/subscriptions/s/c/=cmd", arm_id="/subscriptions/s/c/=CMD", name="=cmd", subscription_id="s", first_seen_at=at, last_seen_at=at
    )
    day = dt.timedelta(days=1)
    common = {"control": "ARC-NET-01", "attested_by": analyst, "expires_at": at + day}
    Attestation.objects.create(cluster=cluster, statement="+verified by hand", created_at=at - day, **common)
    Attestation.objects.create(tag_key="env", statement="later", created_at=at + dt.timedelta(hours=1), **common)
    Attestation.objects.create(
        tag_key="env", statement="revoked before", created_at=at - day, revoked_at=at - dt.timedelta(hours=1), **common
    )
    Attestation.objects.create(
        tag_key="env", statement="revoked after", created_at=at - day, revoked_at=at + dt.timedelta(hours=1), **common
    )
    approved = {"control": "ARC-NET-02", "owner": "@team", "requested_by": analyst, "decided_by": admin_user, "expires_at": at + day}
    RiskException.objects.create(subscription_id="s", justification="-migration", state="approved", decided_at=at - day, **approved)
    RiskException.objects.create(subscription_id="s", justification="asked", state="requested", **approved)
    RiskException.objects.create(
        subscription_id="s", justification="expired", state="approved", decided_at=at - 2 * day, **{**approved, "expires_at": at}
    )
    with EvidenceBundle(tmp_path / "b.zip", scope={}, filters={}, as_of=at) as bundle:
        add_governance(bundle, at)
    with zipfile.ZipFile(tmp_path / "b.zip") as bundle:
        attestations = json.loads(bundle.read("governance/attestations.json"))
        exceptions = json.loads(bundle.read("governance/exceptions.json"))
    assert [a["why"] for a in attestations] == ["+verified by hand", "revoked after"]
    assert attestations[0]["who"] == analyst.username and attestations[0]["until"] == "2026-11-02T00:00:00Z"
    assert attestations[0]["target"]["cluster"] == "/subscriptions/s/c/=CMD" and attestations[0]["target"]["cluster_name"] == "=cmd"
    assert [e["why"] for e in exceptions] == ["-migration"]
    assert exceptions[0]["who"] == {"requested_by": analyst.username, "approved_by": admin_user.username, "owner": "@team"}
    assert exceptions[0]["target"]["subscription_id"] == "s" and exceptions[0]["until"] == "2026-11-02T00:00:00Z"
    rows = {entry["path"]: entry["rows"] for entry in manifest_of(tmp_path / "b.zip")["files"]}
    assert rows == {"governance/attestations.json": 2, "governance/exceptions.json": 1}


def test_the_product_version_is_pyprojects() -> None:
    assert f'version = "{posture.__version__}"' in (ROOT / "pyproject.toml").read_text()
