"""Offline verification of an evidence bundle: the manifest's signature, then every file's SHA-256
and size against the manifest, naming each file altered, added or removed. Reads the zip only:
no database, no settings."""

from __future__ import annotations

import binascii
import gzip
import hashlib
import json
import os
import zipfile
import zlib
from base64 import b64decode
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from posture.exports import signing
from posture.exports.bundle import CHUNK_SIZE, MANIFEST, PUBLIC_KEY, RESERVED, SIGNATURE


@dataclass
class VerificationReport:
    key_id: str | None = None
    key_is_bundles_own: bool = True
    key_is_trusted: bool = False
    signature_valid: bool = False
    files_checked: int = 0
    altered: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature_valid and not (self.altered or self.added or self.removed or self.problems)

    def lines(self) -> list[str]:
        lines = [self._signature_line()]
        if self.signature_valid and self.key_is_bundles_own and not self.key_is_trusted:
            lines.append(
                "  The key is the bundle's own public_key.pem: this proves the files are as the signer left them "
                "(integrity), not who signed them (origin). Compare its fingerprint with the one the dashboard "
                "publishes, or verify with --public-key."
            )
        lines.append(f"Files: {self.files_checked} listed in the manifest")
        for label, paths in (("altered", self.altered), ("added", self.added), ("removed", self.removed)):
            lines += [f"  {label}: {path}" for path in paths]
        lines += [f"Problem: {problem}" for problem in self.problems]
        lines.append("OK: the bundle is intact." if self.ok else "FAILED: the bundle does not verify.")
        return lines

    def _signature_line(self) -> str:
        if self.key_id is None:
            return "Signature: not checked (no usable public key)"
        source = "the bundle's own key" if self.key_is_bundles_own else "the given key"
        trusted = ", a trusted fingerprint" if self.key_is_trusted and self.key_is_bundles_own else ""
        verdict = "valid" if self.signature_valid else "INVALID"
        return f"Signature: {verdict}, checked with {source} {self.key_id}{trusted}"


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _read(bundle: zipfile.ZipFile, name: str, report: VerificationReport) -> bytes | None:
    try:
        return bundle.read(name)
    except KeyError:
        report.removed.append(name)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        report.altered.append(name)
    return None


def _check_signature(report: VerificationReport, manifest: bytes, signature: bytes, public_pem: bytes, trusted: set[str]) -> None:
    try:
        report.key_id = signing.key_id(public_pem)
    except ValueError as error:
        report.problems.append(f"the public key is not an Ed25519 public key in PEM: {error}")
        return
    report.key_is_trusted = not report.key_is_bundles_own or report.key_id in trusted
    try:
        raw_signature = b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw_signature = b""
    report.signature_valid = signing.verify(public_pem, manifest, raw_signature)


def _check_member(bundle: zipfile.ZipFile, entry: dict[str, Any], report: VerificationReport) -> bool:
    try:
        with bundle.open(entry["path"]) as member:
            sha256, size = _digest(member)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        sha256, size = "", -1  # a damaged member (CRC or deflate error) is altered too
    if (sha256, size) != (entry.get("sha256"), entry.get("size")):
        report.altered.append(entry["path"])
        return False
    return True


def _check_raw_evidence(bundle: zipfile.ZipFile, evidence: dict[str, Any], report: VerificationReport) -> None:
    """Raw responses must also match the digest stored when they were collected."""
    try:
        with bundle.open(evidence["path"]) as member, gzip.open(member) as content:
            sha256, _ = _digest(content)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile):
        sha256 = ""
    if sha256 != evidence.get("content_sha256"):
        report.problems.append(f"{evidence['path']}: its content does not match the SHA-256 stored when it was collected")


def verify_bundle(
    path: str | os.PathLike[str], *, public_key_pem: bytes | None = None, trusted_key_ids: Iterable[str] = ()
) -> VerificationReport:
    """Checks the bundle at `path`. With `public_key_pem` the signature proves origin too;
    without it the bundle's own public_key.pem proves integrity only, unless its fingerprint
    is among `trusted_key_ids`."""
    report = VerificationReport(key_is_bundles_own=public_key_pem is None)
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        report.problems.append(f"cannot read the bundle as a zip file: {error}")
        return report
    with bundle:
        names = Counter(bundle.namelist())
        report.problems += [f"{name} appears {count} times in the zip" for name, count in sorted(names.items()) if count > 1]
        manifest_bytes = _read(bundle, MANIFEST, report)
        signature = _read(bundle, SIGNATURE, report)
        public_pem = public_key_pem if public_key_pem is not None else _read(bundle, PUBLIC_KEY, report)
        if manifest_bytes is None:
            return report
        if signature is not None and public_pem is not None:
            _check_signature(report, manifest_bytes, signature, public_pem, set(trusted_key_ids))
        try:
            manifest = json.loads(manifest_bytes)
            files = {entry["path"]: entry for entry in manifest["files"]}
        except (ValueError, KeyError, TypeError) as error:
            report.problems.append(f"{MANIFEST} is not a readable manifest: {error}")
            return report
        report.files_checked = len(files)
        intact = set()
        for name, entry in sorted(files.items()):
            if name not in names:
                report.removed.append(name)
            elif _check_member(bundle, entry, report):
                intact.add(name)
        report.added = sorted(name for name in names if name not in files and name not in RESERVED)
        for evidence in manifest.get("evidence", []):
            if evidence.get("path") in intact:
                _check_raw_evidence(bundle, evidence, report)
    return report
