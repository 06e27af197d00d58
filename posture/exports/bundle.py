"""The evidence bundle: a zip of named files, a manifest of their digests, and its signature.

    with EvidenceBundle(path, scope={...}, filters={...}, as_of=when) as bundle:
        bundle.add("findings.csv", chunks, rows=n)       # bytes, an iterable of bytes, or a binary file
        with bundle.open("report.html") as out:         # or write as you go
            out.write(...)
            out.rows = n

Each file is hashed (SHA-256) and measured as it is compressed, so nothing holds a whole file or
the bundle in memory. On a clean exit the zip gets `manifest.json` (sorted keys, UTF-8),
`manifest.sig` (base64 Ed25519 signature of the manifest's exact bytes) and `public_key.pem`, and
only then is it renamed to `path`; on an error the partial file is deleted. Given a writable
binary stream instead of a path, the bundle is written straight to it (it needs no seek: members
then carry data descriptors) and what reached it on an error is the caller's to discard.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
import zipfile
from base64 import b64encode
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import posture
from posture.catalog.controls import CATALOG_VERSION
from posture.collect.queries import ALL_QUERIES, ARG_API_VERSION, PROVISIONED_CLUSTER_API_VERSION, PROVISIONED_CLUSTER_INSTANCE_PATH
from posture.exports import signing
from posture.timestamps import iso_utc

FORMAT = "arc-posture-evidence-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
RESERVED = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})
CHUNK_SIZE = 1 << 20

Source = bytes | Iterable[bytes] | IO[bytes]


class BundleError(Exception):
    """A file the bundle cannot take (bad or repeated name), or a bundle used out of order."""


@dataclass
class BundleFile:
    path: str
    sha256: str
    size: int
    rows: int | None = None

    def manifest_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.rows is not None:
            entry["rows"] = self.rows
        return entry


class HashingWriter(io.RawIOBase):
    """A zip member being written, hashed and measured on the way. Set `rows` once known.
    Wrap in io.TextIOWrapper(out, encoding="utf-8", newline="") for text writers (csv), and
    flush it before the `with` block ends."""

    def __init__(self, target: IO[bytes]) -> None:
        super().__init__()
        self._target = target
        self._digest = hashlib.sha256()
        self.size = 0
        self.rows: int | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._target.write(view)
        self._digest.update(view)
        self.size += len(view)
        return len(view)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def _chunks(source: Source) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
    elif hasattr(source, "read"):
        while chunk := source.read(CHUNK_SIZE):
            yield chunk
    else:
        yield from source


def _checked_name(name: str) -> str:
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
        raise BundleError(f"{name!r} is not a relative path of the bundle")
    if name in RESERVED:
        raise BundleError(f"{name} is written by the bundle itself")
    return name


def queries_in_use() -> list[dict[str, str]]:
    """Every Resource Graph query the product sends, exactly, with its api-version, and the ARM
    read of provisioned cluster instances."""
    queries = [{"name": q.name, "table": q.table, "kql": q.text, "api_version": ARG_API_VERSION} for q in ALL_QUERIES]
    queries.append(
        {
            "name": "provisioned_cluster_instances",
            "table": "arm",
            "request": "GET {clusterId}" + PROVISIONED_CLUSTER_INSTANCE_PATH,
            "api_version": PROVISIONED_CLUSTER_API_VERSION,
        }
    )
    return queries


class EvidenceBundle:
    def __init__(
        self,
        path: str | os.PathLike[str] | IO[bytes],
        *,
        scope: Mapping[str, Any],
        filters: Mapping[str, Any],
        as_of: dt.datetime,
        scan_ids: Iterable[Any] = (),
    ) -> None:
        self._stream = path if hasattr(path, "write") else None
        self.path = None if self._stream is not None else Path(path)  # type: ignore[arg-type]
        self.scope = dict(scope)
        self.filters = dict(filters)
        self.as_of = as_of
        self.created_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.scan_ids = {str(scan_id) for scan_id in scan_ids}
        self.files: list[BundleFile] = []
        self.sections: dict[str, list[dict[str, Any]]] = {}
        self._names: set[str] = set()
        self._zip: zipfile.ZipFile | None = None
        self._temporary: IO[bytes] | None = None

    def __enter__(self) -> EvidenceBundle:
        if self.path is None:
            self._zip = zipfile.ZipFile(self._stream, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[arg-type]
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part", delete=False)
        self._zip = zipfile.ZipFile(self._temporary, "w", compression=zipfile.ZIP_DEFLATED)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if kind is None:
            self._finish()
        else:
            self._abandon()

    @contextmanager
    def open(self, name: str, *, rows: int | None = None) -> Iterator[HashingWriter]:
        """A new member of the bundle, written as you go (see HashingWriter)."""
        if self._zip is None:
            raise BundleError("the bundle is not open: use it in a with block")
        name = _checked_name(name)
        if name in self._names:
            raise BundleError(f"{name} is already in the bundle")
        self._names.add(name)
        info = self._member_info(name)
        # force_zip64: the size is unknown until the end and may pass 2 GiB.
        with self._zip.open(info, "w", force_zip64=True) as member:
            writer = HashingWriter(member)
            writer.rows = rows
            yield writer
        self.files.append(BundleFile(name, writer.sha256, writer.size, writer.rows))

    def add(self, name: str, source: Source, *, rows: int | None = None) -> BundleFile:
        with self.open(name, rows=rows) as out:
            for chunk in _chunks(source):
                out.write(chunk)
        return self.files[-1]

    def record(self, section: str, entry: Mapping[str, Any]) -> None:
        """Adds `entry` to the manifest's list `section` (e.g. the provenance of raw evidence)."""
        self.sections.setdefault(section, []).append(dict(entry))

    def manifest(self) -> dict[str, Any]:
        public_pem = signing.public_key_pem()
        return {
            **self.sections,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": iso_utc(self.created_at),
            "as_of": iso_utc(self.as_of),
            "scope": self.scope,
            "filters": self.filters,
            "product": {"name": "arc-posture", "version": posture.__version__},
            "catalog_version": CATALOG_VERSION,
            "queries": queries_in_use(),
            "scans": sorted(self.scan_ids),
            "files": [f.manifest_entry() for f in sorted(self.files, key=lambda f: f.path)],
            "signature": {
                "algorithm": signing.ALGORITHM,
                "key_id": signing.key_id(public_pem),
                "file": SIGNATURE,
                "public_key": PUBLIC_KEY,
            },
        }

    def _member_info(self, name: str) -> zipfile.ZipInfo:
        # Every member dated by the bundle, so its bytes depend on the content only.
        info = zipfile.ZipInfo(name, date_time=self.created_at.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def _write_member(self, name: str, data: bytes) -> None:
        assert self._zip is not None
        self._zip.writestr(self._member_info(name), data)

    def _finish(self) -> None:
        assert self._zip is not None
        try:
            manifest = json.dumps(self.manifest(), sort_keys=True, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
            self._write_member(MANIFEST, manifest)
            self._write_member(SIGNATURE, b64encode(signing.sign(manifest)) + b"\n")
            self._write_member(PUBLIC_KEY, signing.public_key_pem())
            self._zip.close()
            if self._temporary is None:  # a stream: the caller owns it
                return
            self._temporary.flush()
            os.fsync(self._temporary.fileno())
            self._temporary.close()
            os.replace(self._temporary.name, self.path)
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        assert self._zip is not None
        try:
            self._zip.close()
        except Exception:  # noqa: BLE001, S110 - the file is deleted anyway
            pass
        if self._temporary is None:
            return
        self._temporary.close()
        Path(self._temporary.name).unlink(missing_ok=True)
