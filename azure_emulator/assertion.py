"""Certificate credentials: the app's registered certificate and the signed client assertions
Entra ID accepts from it (RFC 7523 JWT bearer, as MSAL sends them).

The assertion's header names the certificate by thumbprint (x5t#S256, or x5t: SHA-1), it is signed
RS256 or PS256 by the certificate's key, its audience is the token endpoint, and its issuer and
subject are the client id.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

CLOCK_SKEW = 300.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ClientCertificate:
    """A self-signed RSA certificate registered on the app, with its private key (the client's half)."""

    pem: bytes  # private key then certificate: what CertificateCredential reads
    certificate: x509.Certificate

    @classmethod
    def generate(cls, client_id: str) -> ClientCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"arc-posture-{client_id}")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cls(pem + cert.public_bytes(serialization.Encoding.PEM), cert)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        path.chmod(0o600)
        return path

    @property
    def thumbprints(self) -> set[str]:
        return {_b64url(self.certificate.fingerprint(hashes.SHA256())), _b64url(self.certificate.fingerprint(hashes.SHA1()))}  # noqa: S303


def check_assertion(assertion: str, certificate: ClientCertificate, client_id: str, token_url: str) -> str | None:
    """None when the assertion is valid, else Entra ID's AADSTS error description."""
    try:
        head_b64, claims_b64, signature_b64 = assertion.split(".")
        header: dict[str, Any] = json.loads(_unb64url(head_b64))
        claims: dict[str, Any] = json.loads(_unb64url(claims_b64))
        signature = _unb64url(signature_b64)
    except (ValueError, binascii.Error):
        return "AADSTS50027: JWT token is invalid or malformed."
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return "AADSTS50027: JWT token is invalid or malformed."
    named = str(header.get("x5t#S256") or header.get("x5t") or "")
    if named.rstrip("=") not in certificate.thumbprints:  # MSAL keeps the base64 padding
        return f"AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{named}']"  # noqa: E501
    public_key = certificate.certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    signed = f"{head_b64}.{claims_b64}".encode()
    schemes: dict[str, padding.AsymmetricPadding] = {
        "RS256": padding.PKCS1v15(),
        "PS256": padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
    }
    scheme = schemes.get(str(header.get("alg")))
    if scheme is None:
        return "AADSTS5002730: Invalid JWT token. Unsupported key for the signing algorithm."
    try:
        public_key.verify(signature, signed, scheme, hashes.SHA256())
    except InvalidSignature:
        return "AADSTS7000274: Key was found, but use of the key to verify the signature failed."
    if str(claims.get("aud", "")).lower() != token_url.lower():
        return f"AADSTS700212: No matching federated identity record found for presented assertion audience '{claims.get('aud')}'."
    if str(claims.get("iss", "")).lower() != client_id or str(claims.get("sub", "")).lower() != client_id:
        return "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter."
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp + CLOCK_SKEW < time.time():
        return "AADSTS700024: Client assertion is not within its valid time range."
    return None
