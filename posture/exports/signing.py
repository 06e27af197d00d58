"""Ed25519 signatures of evidence bundles.

The private key is base64 of 32 random bytes, from EVIDENCE_SIGNING_KEY or the file named by
EVIDENCE_SIGNING_KEY_FILE (settings.EVIDENCE_SIGNING_KEY). Without one, the embedded default keeps a
key of its own in settings.EVIDENCE_SIGNING_KEY_PATH (var/, mode 0600), created once; production
refuses to start without a key. The key never goes to the logs or the database.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from base64 import b64encode
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key
from django.conf import settings

from posture.env import base64_key

ALGORITHM = "Ed25519"
KEY_SIZE = 32


def signing_key() -> Ed25519PrivateKey:
    raw = settings.EVIDENCE_SIGNING_KEY or _embedded_key(Path(settings.EVIDENCE_SIGNING_KEY_PATH))
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_pem() -> bytes:
    return signing_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def key_id(public_pem: bytes) -> str:
    """The key's fingerprint: SHA-256 of the raw 32-byte public key, as printed by the dashboard
    and recorded in every manifest."""
    return "sha256:" + hashlib.sha256(_raw_public(_load_public(public_pem))).hexdigest()


def sign(data: bytes) -> bytes:
    return signing_key().sign(data)


def verify(public_pem: bytes, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is the key's signature of `data`; False also for a key that is not an
    Ed25519 public key in PEM."""
    try:
        _load_public(public_pem).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _load_public(public_pem: bytes) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(public_pem)
    except UnsupportedAlgorithm as error:
        raise ValueError(str(error)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an {ALGORITHM} public key")
    return key


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _embedded_key(path: Path) -> bytes:
    """The embedded default's key: read from `path`, or created there first. Written to a private
    temporary file and linked into place, so processes starting together agree on one key and
    none reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(b64encode(secrets.token_bytes(KEY_SIZE)).decode("ascii") + "\n")
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
        finally:
            os.unlink(temporary)
    key = base64_key(str(path), path.read_text(encoding="ascii").strip(), size=KEY_SIZE)
    if key is None:
        raise ValueError(f"{path} is empty; delete it to create a new evidence signing key")
    return key
