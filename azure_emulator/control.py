"""Test-control routes under /_emu/ (no auth, loopback clients only).

POST /_emu/faults        queue faults: one spec or a list of {"type": ..., ...} (Faults.apply_spec)
GET  /_emu/faults        queued faults
POST /_emu/reset         clear faults, log, counters, quota and throttle state, Entra users and codes
GET  /_emu/log[?kind=]   request records
GET  /_emu/stats         counters
GET|POST /_emu/config    {"quota": [15, 5.0] | null, "token_lifetime": s,
                          "arm_throttle": [250, 25] | null, "quota_retry_after": bool}
GET  /_emu/fleet         tenant, subscriptions and management groups
POST /_emu/fleet/cluster {"id": ..., "action": "update" | "update_instance" | "remove" | "restore",
                          "patch": {...}}
POST /_emu/fleet/worsen  {"clusters": N}: switch off the private path (Private Link, gateway) of N clusters
                          (fleet/worsen.py); answers {"clusters": [their ids]}
GET  /_emu/entra         directory users (oid, upn, roles, groups), redirect URIs, signing key ids
POST /_emu/entra/user    {"user": oid or upn, "roles": [...], "groups": [...]}: what Entra assigns
POST /_emu/entra/redirect_uris  {"redirect_uris": [...]}: the app registration's redirect URIs
POST /_emu/entra/rotate  a new signing key; the old one leaves the JWKS
Id-token faults go through /_emu/faults: {"type": "id_token", "how": "wrong_audience", ...}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azure_emulator.fleet.worsen import worsen
from azure_emulator.messages import Request, Response, json_response

if TYPE_CHECKING:
    from azure_emulator.app import App


def handle(app: App, request: Request) -> Response:
    if not (request.client.startswith("127.") or request.client == "::1"):
        return _error(403, "The control API answers loopback clients only.")
    route = (request.method, request.path.rstrip("/").lower())
    try:
        body = request.json() if request.body else {}
        if route == ("POST", "/_emu/faults"):
            for spec in body if isinstance(body, list) else [body]:
                app.faults.apply_spec(spec)
            return json_response(200, {"pending": app.faults.pending()})
        if route == ("GET", "/_emu/faults"):
            return json_response(200, {"pending": app.faults.pending(), "forbidden": sorted(app.faults.forbidden)})
        if route == ("POST", "/_emu/reset"):
            app.reset()
            return json_response(200, {"reset": True})
        if route == ("GET", "/_emu/log"):
            return json_response(200, {"requests": app.recorder.log(request.query.get("kind"))})
        if route == ("GET", "/_emu/stats"):
            return json_response(200, app.recorder.stats())
        if route == ("POST", "/_emu/config"):
            configure(app, body)
            return json_response(200, current_config(app))
        if route == ("GET", "/_emu/config"):
            return json_response(200, current_config(app))
        if route == ("GET", "/_emu/fleet"):
            return json_response(200, fleet_summary(app))
        if route == ("POST", "/_emu/fleet/cluster"):
            return json_response(200, {"cluster": mutate_cluster(app, body)})
        if route[1].startswith("/_emu/entra"):
            return entra_control(app, route, body)
        if route == ("POST", "/_emu/fleet/worsen"):
            return json_response(200, {"clusters": worsen(app.fleet, int(body.get("clusters", 1)))})
    except KeyError as error:
        return _error(404, f"Unknown resource {error}.")
    except (ValueError, TypeError) as error:
        return _error(400, str(error))
    return _error(404, f"No control route {request.method} {request.path}.")


def configure(app: App, config: dict[str, Any]) -> None:
    unknown = set(config) - {"quota", "token_lifetime", "arm_throttle", "quota_retry_after"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    if "quota" in config:
        quota = config["quota"]
        limit, window = (None, app.arg.quota.window) if quota is None else (int(quota[0]), float(quota[1]))
        app.arg.quota.configure(limit, window)
    if "token_lifetime" in config:
        app.identity.lifetime = int(config["token_lifetime"])
    if "arm_throttle" in config:
        throttle = config["arm_throttle"]
        burst, refill = (None, app.arm.buckets.refill) if throttle is None else (int(throttle[0]), float(throttle[1]))
        app.arm.buckets.configure(burst, refill)
    if "quota_retry_after" in config:
        app.arg.quota_retry_after = bool(config["quota_retry_after"])


def current_config(app: App) -> dict[str, Any]:
    quota, buckets = app.arg.quota, app.arm.buckets
    return {
        "quota": None if quota.limit is None else [quota.limit, quota.window],
        "token_lifetime": app.identity.lifetime,
        "arm_throttle": None if buckets.burst is None else [buckets.burst, buckets.refill],
        "quota_retry_after": app.arg.quota_retry_after,
    }


def fleet_summary(app: App) -> dict[str, Any]:
    fleet = app.fleet
    return {
        "tenant_id": fleet.tenant_id,
        "clusters": fleet.cluster_count,
        "seed": fleet.seed,
        "subscriptions": sorted(fleet.subscriptions),
        "management_groups": {mg.name: fleet.subscriptions_under(mg.name) for mg in fleet.management_groups.values()},
    }


def mutate_cluster(app: App, body: dict[str, Any]) -> Any:
    fleet, cluster_id, action = app.fleet, body["id"], body.get("action", "update")
    if action == "update":
        return fleet.update_cluster(cluster_id, body.get("patch") or {})
    if action == "update_instance":
        return fleet.update_provisioned_cluster_instance(cluster_id, body.get("patch") or {})
    if action == "remove":
        fleet.remove_cluster(cluster_id)
        return None
    if action == "restore":
        fleet.restore_cluster(cluster_id)
        return fleet.cluster(cluster_id)
    raise ValueError(f"unknown action {action!r}")


def entra_control(app: App, route: tuple[str, str], body: dict[str, Any]) -> Response:
    entra = app.entra
    if route == ("GET", "/_emu/entra"):
        return json_response(200, entra.state())
    if route == ("POST", "/_emu/entra/user"):
        user = entra.set_user(str(body["user"]), body.get("roles"), body.get("groups"))
        return json_response(200, {"user": user.public()})
    if route == ("POST", "/_emu/entra/redirect_uris"):
        uris = body["redirect_uris"]
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise ValueError("redirect_uris must be a list of URLs")
        entra.redirect_uris = list(uris)
        return json_response(200, entra.state())
    if route == ("POST", "/_emu/entra/rotate"):
        return json_response(200, {"kid": entra.rotate(), **entra.state()})
    return _error(404, f"No control route {route[0]} {route[1]}.")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": {"code": "EmulatorControl", "message": message}})
