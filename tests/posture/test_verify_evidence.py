"""Offline verification: a bundle as built verifies; every tampering is caught and named; the
command runs with the database unreachable."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from posture.exports import signing
from posture.exports.bundle import EvidenceBundle
from posture.exports.verify import verify_bundle

ROOT = Path(__file__).resolve().parents[2]
FILES = {"findings.csv": b"cluster,status\n=cmd,failing\n", "reports/nist.html": b"<h1>NIST</h1>", "scorecards.jsonl": b'{"grade":"F"}\n'}


@pytest.fixture(autouse=True)
def signing_key_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.EVIDENCE_SIGNING_KEY = None
    settings.EVIDENCE_SIGNING_KEY_PATH = tmp_path / "var" / "evidence_signing_key"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.zip"
    with EvidenceBundle(path, scope={"name": "emulated"}, filters={}, as_of=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) as built:
        for name, data in FILES.items():
            built.add(name, data)
    return path


def rewrite(path: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the bundle with members replaced (bytes), removed (None) or added."""
    target = path.with_name("tampered.zip")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name in source.namelist():
            if name not in change:
                out.writestr(name, source.read(name))
        for name, data in change.items():
            if data is not None:
                out.writestr(name, data)
    return target


def test_an_intact_bundle_verifies_and_says_its_own_key_proves_integrity_only(bundle) -> None:
    report = verify_bundle(bundle)
    assert report.ok and report.signature_valid and report.files_checked == 3
    assert report.key_is_bundles_own and not report.key_is_trusted
    assert any("integrity" in line and "not who signed them (origin)" in line for line in report.lines())
    trusted = verify_bundle(bundle, trusted_key_ids=[signing.key_id(signing.public_key_pem())])
    assert trusted.ok and trusted.key_is_trusted and not any("origin" in line for line in trusted.lines())


def test_a_tampered_file_is_named(bundle) -> None:
    report = verify_bundle(rewrite(bundle, {"findings.csv": b"cluster,status\n=cmd,passing\n"}))
    assert not report.ok and report.signature_valid
    assert (report.altered, report.added, report.removed) == (["findings.csv"], [], [])
    assert "  altered: findings.csv" in report.lines()


def test_a_file_changed_in_place_with_a_bad_crc_is_named(bundle) -> None:
    data = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as source:
        info = source.getinfo("reports/nist.html")
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)  # of the local header
    start = info.header_offset + 30 + name_length + extra_length
    data[start + 2] ^= 0xFF  # flip a byte of the compressed data
    bundle.write_bytes(bytes(data))
    report = verify_bundle(bundle)
    assert report.altered == ["reports/nist.html"] and not report.ok


def test_removed_and_added_files_are_named(bundle) -> None:
    report = verify_bundle(rewrite(bundle, {"scorecards.jsonl": None, "extra/notes.txt": b"trust me"}))
    assert (report.removed, report.added, report.altered) == (["scorecards.jsonl"], ["extra/notes.txt"], [])
    assert {"  removed: scorecards.jsonl", "  added: extra/notes.txt"} <= set(report.lines()) and not report.ok


def test_a_bad_signature_is_caught(bundle) -> None:
    forged = base64.b64encode(bytes(64)) + b"\n"
    report = verify_bundle(rewrite(bundle, {"manifest.sig": forged}))
    assert not report.signature_valid and not report.ok
    assert report.lines()[0].startswith("Signature: INVALID")


def test_a_manifest_edited_to_match_a_tampered_file_breaks_the_signature(bundle) -> None:
    with zipfile.ZipFile(bundle) as source:
        manifest = source.read("manifest.json").replace(b'"emulated"', b'"another"')
    report = verify_bundle(rewrite(bundle, {"manifest.json": manifest}))
    assert not report.signature_valid and not report.ok


def test_a_bundle_re_signed_with_another_key_fails_against_the_published_key(bundle, settings) -> None:
    published = signing.public_key_pem()
    settings.EVIDENCE_SIGNING_KEY, settings.EVIDENCE_SIGNING_KEY_PATH = os.urandom(32), None
    forger = bundle.with_name("forged.zip")
    with EvidenceBundle(forger, scope={"name": "emulated"}, filters={}, as_of=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) as built:
        built.add("findings.csv", b"all passing\n")
    assert verify_bundle(forger).ok  # consistent in itself...
    against_published = verify_bundle(forger, public_key_pem=published)
    assert not against_published.ok and not against_published.signature_valid  # ...but not from the dashboard's key
    assert verify_bundle(bundle, public_key_pem=published).ok


def test_raw_evidence_that_differs_from_its_stored_digest_is_reported(tmp_path) -> None:
    path = tmp_path / "bundle.zip"
    with EvidenceBundle(path, scope={}, filters={}, as_of=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) as built:
        built.add("evidence/scan-1/batch-1-clusters.jsonl.gz", gzip.compress(b'{"data": []}\n'))
        built.record("evidence", {"path": "evidence/scan-1/batch-1-clusters.jsonl.gz", "content_sha256": "0" * 64})
    report = verify_bundle(path)
    assert report.signature_valid and not report.ok
    assert report.problems == [
        "evidence/scan-1/batch-1-clusters.jsonl.gz: its content does not match the SHA-256 stored when it was collected"
    ]


def run_verify(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The command in a fresh process whose database cannot be reached (nothing listens on port 9)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "DJANGO_", "REDIS_", "EVIDENCE_"))}
    env = {**clean, "DATABASE_URL": "postgres://nobody@127.0.0.1:9/nowhere", "ARC_VAR_DIR": str(tmp_path / "other-var")}
    return subprocess.run(
        [sys.executable, "manage.py", "verify_evidence", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )


def test_the_command_verifies_offline_with_the_published_key(bundle, tmp_path) -> None:
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(signing.public_key_pem())
    result = run_verify([str(bundle), "--public-key", str(key_file)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Signature: valid, checked with the given key sha256:" in result.stdout and "OK: the bundle is intact." in result.stdout
    assert not (tmp_path / "other-var" / "evidence_signing_key").exists()  # verifying makes no key


def test_the_command_lists_every_problem_and_exits_non_zero(bundle, tmp_path) -> None:
    tampered = rewrite(bundle, {"findings.csv": b"edited", "scorecards.jsonl": None, "added.txt": b"x"})
    result = run_verify([str(tampered)], tmp_path)
    assert result.returncode != 0
    for line in ("  altered: findings.csv", "  removed: scorecards.jsonl", "  added: added.txt", "FAILED: the bundle does not verify."):
        assert line in result.stdout.splitlines()
    assert "does not verify" in result.stderr


def test_the_command_refuses_a_key_that_is_not_the_signers(bundle, tmp_path) -> None:
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "other.pem").write_bytes(other)
    result = run_verify([str(bundle), "--public-key", str(tmp_path / "other.pem")], tmp_path)
    assert result.returncode != 0 and "Signature: INVALID" in result.stdout


def test_the_command_says_clearly_when_the_file_is_no_bundle(tmp_path) -> None:
    (tmp_path / "not.zip").write_bytes(b"hello")
    result = run_verify([str(tmp_path / "not.zip")], tmp_path)
    assert result.returncode != 0 and "cannot read the bundle as a zip file" in result.stdout
