"""An app admin cannot send the scanning identity's secret or tokens anywhere the operator did not
define, and scan errors reach each role phrased for it. Through the real scope form and scan."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from azure_emulator.certs import create_certificates
from posture.models import Scan, Scope

pytestmark = pytest.mark.django_db(transaction=True)


class Listener:
    """A loopback HTTPS server posing as an authority: records every connection and what it reads."""

    def __init__(self, directory: Path) -> None:
        certificates = create_certificates(directory)
        self.ca_file = str(certificates.ca_file)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificates.cert_file, certificates.key_file)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.server.getsockname()[1]}"
        self.received: list[bytes] = []
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    self.received.append(tls.recv(65536))
                    tls.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                continue

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    own = Listener(tmp_path / "listener")
    yield own
    own.close()


def scope_form(scope: Scope, **fields: str) -> dict[str, str]:
    return {
        "name": scope.name,
        "tenant_id": scope.tenant_id,
        "cloud": scope.cloud,
        "credential": scope.credential,
        "subscriptions": "",
        "management_groups": "",
        "schedule": scope.schedule,
        "enabled": "on",
        **fields,
    }


def test_an_admin_cannot_point_a_scope_at_a_host_the_operator_did_not_define(
    admin_client: Any, make_emulator: Any, emulator_scope: Any, listener: Listener
) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator, name="corp")
    edit = reverse("scope-edit", args=["corp"])
    pointing = {"authority": listener.url, "arm_endpoint": listener.url, "ca_file": listener.ca_file}
    # As the old form allowed: a custom cloud with the listener's endpoints and CA bundle.
    refused = admin_client.post(edit, scope_form(scope, cloud="Custom", **pointing))
    assert refused.status_code == 200 and "Select a valid choice. Custom is not one of the available choices." in refused.content.decode()
    # A defined cloud with the endpoints alongside: they are not the scope's to set.
    admin_client.post(edit, scope_form(scope, **pointing))
    # Whatever was saved, the real scan path runs.
    response = admin_client.post(reverse("scan-start", args=["corp"]), follow=True)
    assert response.status_code == 200
    scan = Scan.objects.get(scope__name="corp")
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    assert listener.connections == 0 and listener.received == []
    assert emulator.stats()["requests"]["token"] == 1  # the secret went to the operator's cloud only
    assert Scope.objects.get().cloud == "emulator"


def test_a_scope_naming_an_undefined_cloud_fails_clearly_for_each_role(
    admin_client: Any, viewer_client: Any, analyst_client: Any, make_emulator: Any, emulator_scope: Any, listener: Listener
) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator, name="corp")
    Scope.objects.filter(pk=scope.pk).update(cloud="Custom")  # as the migration leaves a scope that had its own endpoints
    analyst_client.post(reverse("scan-start", args=["corp"]))
    scan = Scan.objects.get()
    assert scan.state == Scan.State.FAILED and emulator.requests() == [] and listener.connections == 0
    detail = reverse("scan-detail", args=[scan.pk])
    assert "names cloud &#x27;Custom&#x27;, which is not defined (ARC_CLOUDS)" in admin_client.get(detail).content.decode()
    for client in (viewer_client, analyst_client):
        html = client.get(detail).content.decode()
        assert "The scope names a cloud or credential this deployment does not offer." in html
        assert "ARC_CLOUDS" not in html and "An administrator can see the technical details." in html
    edit = admin_client.get(reverse("scope-edit", args=["corp"])).content.decode()
    assert '<option value="" selected>Custom: not defined here, choose a cloud</option>' in edit
    assert "emulator (defined by the operator)" in edit
    kept = admin_client.post(reverse("scope-edit", args=["corp"]), scope_form(Scope.objects.get(), cloud=""))
    assert "This field is required." in kept.content.decode() and Scope.objects.get().cloud == "Custom"


def test_a_ca_bundle_is_named_by_the_operator_and_its_errors_name_paths_to_admins_only(
    admin_client: Any, viewer_client: Any, make_emulator: Any, emulator_scope: Any, settings: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator, name="corp")
    probe = tmp_path / "private" / "probe.pem"
    # An admin naming a file to read: not the scope's to say (the old form took any path).
    saved = admin_client.post(reverse("scope-edit", args=["corp"]), scope_form(scope, ca_file=str(probe)))
    assert saved.status_code == 302 and not hasattr(Scope.objects.get(), "ca_file")
    # The operator's bundle went missing after the start: the scan fails, and only admins read where.
    settings.ARC_AZURE_MAX_ATTEMPTS = 1
    settings.ARC_CLOUDS = {"emulator": {**settings.ARC_CLOUDS["emulator"], "ca_file": str(probe)}}
    admin_client.post(reverse("scan-start", args=["corp"]))
    scan = Scan.objects.get()
    assert scan.state == Scan.State.FAILED and str(probe) in scan.error
    detail = reverse("scan-detail", args=[scan.pk])
    assert str(probe) in admin_client.get(detail).content.decode()
    for page in (detail, reverse("scan-list"), reverse("overview")):
        html = viewer_client.get(page).content.decode()
        assert str(probe) not in html and "probe.pem" not in html and str(tmp_path) not in html, page
    assert "The connection to Azure could not be verified (TLS)." in viewer_client.get(detail).content.decode()


def test_scan_errors_reach_viewers_and_analysts_without_ids_paths_or_urls(
    admin_client: Any, viewer_client: Any, analyst_client: Any, make_emulator: Any, emulator_scope: Any, monkeypatch: Any
) -> None:
    emulator = make_emulator(clusters=20)
    emulator_scope(emulator, name="corp")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    analyst_client.post(reverse("scan-start", args=["corp"]))
    scan = Scan.objects.get()
    assert scan.state == Scan.State.FAILED
    assert emulator.client_id in scan.error  # stored for the admin, who can act on it
    pages = [reverse("scan-detail", args=[scan.pk]), reverse("scan-list"), reverse("overview")]
    assert emulator.client_id in admin_client.get(pages[0]).content.decode()
    for client in (viewer_client, analyst_client):
        for page in pages:
            html = client.get(page).content.decode()
            assert emulator.client_id not in html and emulator.tenant_id not in html, page
            assert "AZURE_CLIENT_ID" not in html and emulator.base_url not in html and "AADSTS" not in html, page
        assert "Azure did not accept the scanning identity&#x27;s sign-in." in client.get(pages[0]).content.decode()
    for html in (c.get(p).content.decode() for c in (admin_client, viewer_client) for p in pages):
        assert "not-the-secret" not in html and emulator.client_secret not in html


def test_editing_a_scope_whose_credential_is_no_longer_listed_never_switches_its_identity(
    admin_client: Any, make_emulator: Any, emulator_scope: Any, settings: Any
) -> None:
    emulator = make_emulator(clusters=20)
    scope = emulator_scope(emulator, name="corp")
    Scope.objects.filter(pk=scope.pk).update(credential="legacy")  # listed once, dropped from ARC_CREDENTIALS since
    edit = admin_client.get(reverse("scope-edit", args=["corp"])).content.decode()
    assert '<option value="legacy" selected>legacy: no longer listed, choose a credential</option>' in edit
    # An unrelated change, posted with the form as shown, is refused rather than saved as Default.
    kept = admin_client.post(reverse("scope-edit", args=["corp"]), scope_form(Scope.objects.get(), schedule="0 3 * * *"))
    assert kept.status_code == 200 and "ARC_CREDENTIALS" in kept.content.decode()
    assert Scope.objects.get().credential == "legacy" and Scope.objects.get().schedule != "0 3 * * *"
