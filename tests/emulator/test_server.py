"""HTTPS plumbing: the CA, per-connection handshakes, keep-alive, shutdown."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import requests
from cryptography import x509

from azure_emulator import Emulator


def test_clients_trust_the_emulator_through_its_ca_for_localhost_and_127_0_0_1(emu: Emulator) -> None:
    ca = x509.load_pem_x509_certificate(Path(emu.ca_file).read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    context = ssl.create_default_context(cafile=emu.ca_file)
    for host in ("localhost", "127.0.0.1"):
        with socket.create_connection(("127.0.0.1", emu.port)) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            leaf = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
            assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            assert leaf.issuer == ca.subject
    with pytest.raises(ssl.SSLCertVerificationError), socket.create_connection(("127.0.0.1", emu.port)) as raw:
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")  # system store only


def test_stalled_or_plain_http_clients_do_not_block_other_clients(http: requests.Session, emu: Emulator) -> None:
    stalled = socket.create_connection(("127.0.0.1", emu.port))  # never sends a ClientHello
    plain = socket.create_connection(("127.0.0.1", emu.port))
    plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        url = f"{emu.base_url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration"
        assert http.get(url, timeout=2).status_code == 200
        plain.settimeout(2)
        try:
            reply = plain.recv(1024)
        except ConnectionResetError:
            reply = b""
        assert not reply.startswith(b"HTTP/")  # the handshake failed; no plain-HTTP service
    finally:
        stalled.close()
        plain.close()


def test_keep_alive_connections_are_reused_and_closed_on_stop(tmp_path: Path) -> None:
    emulator = Emulator(clusters=10, seed=1, workdir=tmp_path).start()
    session = requests.Session()
    session.trust_env = False
    session.verify = emulator.ca_file
    url = f"{emulator.base_url}/{emulator.tenant_id}/v2.0/.well-known/openid-configuration"
    first = session.get(url)
    second = session.get(url)
    assert first.headers["Content-Length"] == str(len(first.content))
    assert first.status_code == second.status_code == 200
    assert len(session.get_adapter(url).poolmanager.pools) == 1
    emulator.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(url, timeout=2)
