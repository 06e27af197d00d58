"""A fleet that got worse: the same deterministic change every time, for the demo and benchmarks.

`worsen(fleet, count)` takes the first `count` clusters, in id order, that reach Azure Arc over a
private path (Private Link enabled, or the Arc gateway) and are connected, and switches that path
off: privateLinkState becomes Disabled and the gateway is disabled (its resource id removed). A
scan after it records ARC-NET-01 (medium: outbound traffic minimized) going from pass to fail on
each of them, and ARC-PL-01 (medium) failing where it passed or did not apply; the Private Link
and gateway controls that needed the path (ARC-PL-02/03, ARC-NET-02) become not applicable.
"Connected" matters: the scan reads a silent cluster's passes as unknown, which would not regress.
"""

from __future__ import annotations

from typing import Any

from azure_emulator.fleet.model import Fleet

SWITCH_OFF_PRIVATE_PATH = {"properties": {"privateLinkState": "Disabled", "gateway": {"enabled": False, "resourceId": None}}}


def uses_private_path(row: dict[str, Any]) -> bool:
    props = row.get("properties") or {}
    gateway = props.get("gateway")
    uses_gateway = isinstance(gateway, dict) and bool(gateway.get("enabled") or gateway.get("resourceId"))
    return (
        props.get("connectivityStatus") == "Connected"
        and props.get("privateLinkState") in ("Enabled", "Disabled")
        and (props.get("privateLinkState") == "Enabled" or uses_gateway)
    )


def worsen(fleet: Fleet, count: int) -> list[str]:
    """Switch off the private path of up to `count` connected clusters that use one; their ids."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    chosen = sorted((row["id"] for row in fleet.clusters() if uses_private_path(row)), key=str.lower)[:count]
    for cluster_id in chosen:
        fleet.update_cluster(cluster_id, SWITCH_OFF_PRIVATE_PATH)
    return chosen
