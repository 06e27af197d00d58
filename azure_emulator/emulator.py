"""The Python API: one object that generates the fleet, serves it over HTTPS and scripts faults."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from azure_emulator import control
from azure_emulator.app import App
from azure_emulator.arg import ResourceGraph
from azure_emulator.arm import ResourceManager
from azure_emulator.assertion import ClientCertificate
from azure_emulator.certs import create_certificates
from azure_emulator.faults import Faults
from azure_emulator.fleet import Fleet, generate_fleet
from azure_emulator.fleet.rand import stable_guid
from azure_emulator.identity import Identity
from azure_emulator.quota import ReadBuckets, SlidingWindowQuota
from azure_emulator.recorder import Recorder
from azure_emulator.server import EmulatorServer

Quota = tuple[int, float] | None


class Emulator:
    """Entra ID + Azure Resource Graph + ARM GETs for a generated Arc fleet, on 127.0.0.1.

    Credentials: tenant and client ids are fixed per seed; the client secret and the federated
    assertion (for WorkloadIdentityCredential) are new on every instance.
    """

    def __init__(
        self,
        clusters: int = 200,
        seed: int = 0,
        *,
        quota: Quota = (15, 5.0),
        token_lifetime: int = 3600,
        workdir: str | Path | None = None,
        port: int = 0,
        log_bodies: bool = False,
        arm_throttle: Quota = (250, 25.0),
        now: datetime | None = None,
        scope_limit: int = 10_000,
    ) -> None:
        self.fleet: Fleet = generate_fleet(clusters, seed, now=now)
        self.tenant_id = self.fleet.tenant_id
        self.client_id = stable_guid("client", seed)
        self.object_id = stable_guid("service-principal", seed)
        self.client_secret = secrets.token_urlsafe(30)
        self.federated_assertion = _fake_jwt(self.tenant_id, self.client_id)
        self._port = port
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._workdir: Path | None = None
        self._server: EmulatorServer | None = None
        self.ca_file: str | None = None  # PEM of the CA clients trust (connection_verify)
        # The app's registered certificate; its key and certificate (PEM) for CertificateCredential.
        self.client_certificate = ClientCertificate.generate(self.client_id)
        self.client_certificate_path: str | None = None

        identity = Identity(
            self.tenant_id,
            self.client_id,
            self.client_secret,
            self.federated_assertion,
            self.object_id,
            token_lifetime,
            self.client_certificate,
        )
        self.faults = Faults(identity.expire_all)
        limit, window = quota if quota is not None else (None, 5.0)
        burst, refill = arm_throttle if arm_throttle is not None else (None, 25.0)
        graph = ResourceGraph(
            self.fleet,
            self.faults,
            SlidingWindowQuota(limit, window),
            client_id=self.client_id,
            object_id=self.object_id,
            scope_limit=scope_limit,
        )
        manager = ResourceManager(
            self.fleet,
            self.faults,
            ReadBuckets(burst, refill),
            client_id=self.client_id,
            object_id=self.object_id,
        )
        self._app = App(self.fleet, identity, self.faults, graph, manager, Recorder(log_bodies=log_bodies))

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="azure-emulator-"))
        certificates = create_certificates(self._workdir)
        self.ca_file = str(certificates.ca_file)
        self.client_certificate_path = str(self.client_certificate.write(self._workdir / "client-certificate.pem"))
        self._server = EmulatorServer(self._port, self._app, certificates)
        self._app.base_url = f"https://127.0.0.1:{self._server.port}"
        self._app.stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        if self._workdir_arg is None and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- properties -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if not self._app.base_url:
            raise RuntimeError("the emulator is not started")
        return self._app.base_url

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return self._server.port

    # -- test control ---------------------------------------------------------------------------
    def requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, oldest first; kind filters by openid/token/arg/arm/control/other."""
        return self._app.recorder.log(kind)

    def stats(self) -> dict[str, Any]:
        return self._app.recorder.stats()

    def set_quota(self, quota: Quota, *, retry_after: bool | None = None) -> None:
        """(limit, window seconds) per principal, or None to switch the ARG quota off."""
        settings: dict[str, Any] = {"quota": None if quota is None else list(quota)}
        if retry_after is not None:
            settings["quota_retry_after"] = retry_after
        control.configure(self._app, settings)

    def set_token_lifetime(self, seconds: int) -> None:
        control.configure(self._app, {"token_lifetime": seconds})

    def set_arm_throttle(self, throttle: Quota) -> None:
        """(burst, refill per second) per subscription, or None to switch ARM throttling off."""
        control.configure(self._app, {"arm_throttle": None if throttle is None else list(throttle)})

    # -- Entra ID sign-in (azure_emulator/entra.py) ---------------------------------------------
    def register_redirect_uri(self, *uris: str) -> None:
        """Add redirect URIs to the app registration, as an administrator does in the portal."""
        self._app.entra.redirect_uris.extend(u for u in uris if u not in self._app.entra.redirect_uris)

    def set_user(self, who: str, *, roles: list[str] | None = None, groups: list[str] | None = None) -> dict[str, Any]:
        """Change what Entra assigns a directory user (by object id or UPN): app roles, groups."""
        return self._app.entra.set_user(who, roles, groups).public()

    def directory(self) -> list[dict[str, Any]]:
        return [u.public() for u in self._app.entra.users]

    def rotate_signing_key(self) -> str:
        return self._app.entra.rotate()

    def config(self) -> dict[str, Any]:
        return control.current_config(self._app)

    def reset(self) -> None:
        """Clear faults, forbidden subscriptions, the request log, counters and quota state."""
        self._app.reset()

    def summary(self) -> dict[str, Any]:
        """What a client needs to connect (the CLI prints this)."""
        return {
            "base_url": self.base_url,
            "ca_file": self.ca_file,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "federated_assertion": self.federated_assertion,
            "client_certificate_path": self.client_certificate_path,
            "clusters": self.fleet.cluster_count,
            "seed": self.fleet.seed,
            "subscriptions": len(self.fleet.subscriptions),
            "management_groups": sorted(mg.name for mg in self.fleet.management_groups.values()),
        }


def cloud_env(summary: dict[str, Any], name: str = "emulator") -> dict[str, str]:
    """The environment an operator sets to define a running emulator as Arc Posture's custom cloud
    `name` (ARC_CLOUDS): its authority and Resource Manager at base_url, trusted through its CA."""
    prefix = f"ARC_CLOUD_{name.upper().replace('-', '_')}_"
    return {
        f"{prefix}AUTHORITY": summary["base_url"],
        f"{prefix}ARM_ENDPOINT": summary["base_url"],
        f"{prefix}CA_FILE": summary["ca_file"],
        # The emulator's ARM accepts the public cloud's audience, as in the public cloud.
        f"{prefix}AUDIENCE": "https://management.azure.com",
    }


def _fake_jwt(tenant_id: str, client_id: str) -> str:
    """An unsigned JWT-shaped assertion; the emulator compares it verbatim."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {
        "iss": "https://kubernetes.default.svc",
        "sub": "system:serviceaccount:arc:posture",
        "aud": "api://AzureADTokenExchange",
        "tid": tenant_id,
        "azp": client_id,
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(16)}"
