"""Resource Graph rows and ARM bodies → one fact record per cluster (and per related resource).

Every value from Azure is untrusted. A row of the wrong shape (columns missing or oddly typed)
never gets here: posture/normalize/shapes.py refuses it and the last good facts stay. In a well-formed
row, unknown enum values, unparseable dates and odd ids are kept as far as they are known and
listed under "problems" instead of raising. An absent property stays None (unknown); it is
never turned into a default that could read as a pass.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from posture.collect.queries import (
    ARC_GATEWAY,
    ARC_PRIVATE_LINK_SCOPE,
    KEY_VAULT,
    LEGACY_PRIVATE_LINK_SCOPE,
    LOGICAL_NETWORK,
    PRIVATE_ENDPOINT,
)

CONNECTIVITY_STATUSES = {"Connecting", "Connected", "Offline", "Expired", "AgentNotInstalled"}
PRIVATE_LINK_STATES = {"Enabled", "Disabled"}
PROVISIONING_STATES = {"Succeeded", "Failed", "Canceled", "Provisioning", "Updating", "Deleting", "Accepted", "Creating"}
CLUSTER_SEGMENT = "/providers/microsoft.kubernetes/connectedclusters/"
EXTENSION_SEGMENT = "/providers/microsoft.kubernetesconfiguration/"
ID_RE = re.compile(r"^/subscriptions/([0-9a-fA-F-]{36})/resourcegroups/([^/]+)/providers/", re.IGNORECASE)
MAX_TEXT = 512


class Problems:
    """What was missing or odd in one record; stored with the facts as evidence."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, issue: str, value: Any = None) -> None:
        entry = {"field": field, "issue": issue}
        if value is not None:
            entry["value"] = repr(value)[:100]
        self.items.append(entry)


def text(row: dict[str, Any], key: str, problems: Problems | None = None, *, lower: bool = False) -> str | None:
    """A string column; "" (what tostring() makes of a missing property) becomes None."""
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        if problems is not None:
            problems.add(key, "unexpected type", value)
        if isinstance(value, (dict, list)):
            return None
        value = str(value)
    value = value[:MAX_TEXT]
    return value.lower() if lower else value


def flag(row: dict[str, Any], key: str, problems: Problems) -> bool | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        problems.add(key, "unexpected type", value)
        return value.strip().lower() == "true"
    problems.add(key, "unexpected type", value)
    return None


def enum(row: dict[str, Any], key: str, allowed: set[str], problems: Problems) -> str | None:
    value = text(row, key, problems)
    if value is None:
        problems.add(key, "missing")
        return None
    for known in allowed:
        if known.lower() == value.lower():
            return known
    problems.add(key, "unknown value", value)
    return value


def timestamp(row: dict[str, Any], key: str, problems: Problems) -> str | None:
    value = text(row, key, problems)
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        problems.add(key, "not a date-time", value)
        return None
    return parsed.isoformat()


def parse_time(value: str) -> dt.datetime | None:
    # .NET writes up to 7 fractional digits; Python reads at most 6.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().replace("Z", "+00:00"))
    try:
        parsed = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def location(value: Any) -> str:
    return re.sub(r"\s+", "", value).lower()[:64] if isinstance(value, str) else ""


def arm_id(value: Any) -> str | None:
    """A plausible ARM resource id, lower-cased for joining; None otherwise."""
    if not isinstance(value, str) or not ID_RE.match(value) or len(value) > 1024:
        return None
    return value.lower()


def fact_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _tags(value: Any, problems: Problems) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        problems.add("tags", "unexpected type", value)
        return {}
    return {str(k)[:MAX_TEXT]: ("" if v is None else str(v)[:MAX_TEXT]) for k, v in value.items()}


def cluster_record(row: Any) -> dict[str, Any] | None:
    """The cluster's own facts from a `clusters` row; None when the row has no usable id."""
    if not isinstance(row, dict):
        return None
    key = arm_id(row.get("id"))
    if key is None or CLUSTER_SEGMENT not in key:
        return None
    problems = Problems()
    match = ID_RE.match(key)
    assert match is not None
    name = text(row, "name", problems) or row["id"].rsplit("/", 1)[-1]
    gateway_id = text(row, "gatewayResourceId", problems, lower=True)
    record = {
        "id": row["id"],
        "name": name,
        "subscription_id": (text(row, "subscriptionId", problems, lower=True) or match.group(1)).lower(),
        "resource_group": text(row, "resourceGroup", problems) or match.group(2),
        "location": location(row.get("location")),
        "tags": _tags(row.get("tags"), problems),
        "kind": text(row, "kind", problems),
        "connectivity_status": enum(row, "connectivityStatus", CONNECTIVITY_STATUSES, problems),
        "last_connectivity_time": timestamp(row, "lastConnectivityTime", problems),
        "provisioning_state": text(row, "provisioningState", problems),
        "distribution": text(row, "distribution", problems, lower=True),
        "infrastructure": text(row, "infrastructure", problems, lower=True),
        "kubernetes_version": text(row, "kubernetesVersion", problems),
        "agent_version": text(row, "agentVersion", problems),
        "private_link_state": enum(row, "privateLinkState", PRIVATE_LINK_STATES, problems),
        "private_link_scope_id": arm_id(text(row, "privateLinkScopeResourceId", problems)),
        "gateway_enabled": flag(row, "gatewayEnabled", problems),
        "gateway_resource_id": arm_id(gateway_id) if gateway_id else None,
        "workload_identity_enabled": flag(row, "workloadIdentityEnabled", problems),
        "oidc_issuer_enabled": flag(row, "oidcIssuerEnabled", problems),
        "azure_rbac_enabled": flag(row, "azureRbacEnabled", problems),
        "agent_auto_upgrade": text(row, "agentAutoUpgrade", problems),
        "extensions": [],
        "policy_states": [],
        "assessments": [],
        "provisioned_instance": None,
        "problems": problems.items,
    }
    if gateway_id and record["gateway_resource_id"] is None:
        problems.add("gatewayResourceId", "not a resource id", gateway_id)
    return record


def owner_of_extension(row_id: str) -> str:
    return row_id.lower().split(EXTENSION_SEGMENT, 1)[0]


def owner_of_child(row_id: Any) -> str | None:
    """The resource a child row (extension, policy state, assessment) belongs to: its id is the
    owner's id + /providers/<namespace>/<type>/<name>."""
    if not isinstance(row_id, str) or row_id.lower().count("/providers/") < 2:
        return None
    owner = row_id[: row_id.lower().rfind("/providers/")]
    return owner if arm_id(owner) else None


def extension_record(row: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        return None
    problems = Problems()
    record = {
        "name": text(row, "name", problems) or row["id"].rsplit("/", 1)[-1],
        "type": text(row, "extensionType", problems, lower=True),
        "provisioning_state": text(row, "provisioningState", problems),
        "install_state": text(row, "installState", problems),
        "version": text(row, "version", problems),
    }
    if record["type"] is None:
        problems.add("extensionType", "missing")
    if record["provisioning_state"] is None:
        problems.add("provisioningState", "missing")
    record["problems"] = problems.items
    return owner_of_extension(row["id"]), record


def _id_and_text(row: Any, id_key: str, text_key: str) -> tuple[str, str] | None:
    """A row's ARM id and one lower-cased text column, or None when the row lacks either."""
    if not isinstance(row, dict):
        return None
    key, value = arm_id(row.get(id_key)), text(row, text_key, lower=True)
    return None if key is None or value is None else (key, value)


def policy_state_record(row: Any) -> tuple[str, dict[str, Any]] | None:
    if (found := _id_and_text(row, "resourceId", "policyDefinitionName")) is None:
        return None
    resource, definition = found
    return resource, {
        "definition": definition,
        "state": text(row, "complianceState") or None,
        "assignment": text(row, "policyAssignmentId"),
        "timestamp": text(row, "timestamp"),
    }


def assessment_record(row: Any) -> tuple[str, dict[str, Any]] | None:
    if not isinstance(row, dict):
        return None
    resource = arm_id(row.get("resourceId"))
    if resource is None:
        return None
    return resource, {
        "key": text(row, "name"),
        "name": text(row, "displayName"),
        "status": text(row, "statusCode"),
        "severity": text(row, "severity"),
    }


def _connections(value: Any, target_key: str) -> list[dict[str, Any]]:
    """Private endpoint connections, from a scope/vault (target = the endpoint) or from an
    endpoint (target = the linked service). Anything malformed is skipped."""
    result = []
    for _item, props in _with_properties(value):
        state = props.get("privateLinkServiceConnectionState")
        target = props.get(target_key)
        if isinstance(target, dict):
            target = target.get("id")
        group_ids = props.get("groupIds")
        result.append(
            {
                "target": arm_id(target) if isinstance(target, str) else None,
                "status": str(state.get("status"))[:64] if isinstance(state, dict) and state.get("status") else None,
                "group_ids": sorted(str(g).lower() for g in group_ids) if isinstance(group_ids, list) else [],
            }
        )
    return sorted(result, key=lambda c: (c["target"] or "", c["status"] or ""))


def _with_properties(value: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The items of an ARM list that carry a properties object; anything malformed is skipped."""
    for item in value if isinstance(value, list) else []:
        props = item.get("properties") if isinstance(item, dict) else None
        if isinstance(props, dict):
            yield item, props


def _subnets(value: Any) -> list[dict[str, Any]]:
    result = []
    for item, props in _with_properties(value):
        refs = props.get("ipConfigurationReferences")
        result.append(
            {
                "name": str(item.get("name", ""))[:MAX_TEXT],
                "vlan": props.get("vlan") if isinstance(props.get("vlan"), int) else None,
                "address_prefix": str(props.get("addressPrefix") or "")[:64] or None,
                "ip_configuration_refs": sorted({r.get("ID", r.get("id", "")).lower() for r in refs if isinstance(r, dict)} - {""})
                if isinstance(refs, list)
                else [],
            }
        )
    return result


def resource_record(row: Any) -> dict[str, Any] | None:
    """A related network resource (scope, endpoint, gateway, logical network, vault)."""
    if (found := _id_and_text(row, "id", "type")) is None:
        return None
    key, rtype = found
    problems = Problems()
    record: dict[str, Any] = {
        "id": row["id"],
        "type": rtype,
        "name": text(row, "name", problems) or row["id"].rsplit("/", 1)[-1],
        "subscription_id": (text(row, "subscriptionId", problems, lower=True) or key.split("/")[2]),
        "location": location(row.get("location")),
        "provisioning_state": text(row, "provisioningState", problems),
        "policy_states": [],
    }
    if rtype in (ARC_PRIVATE_LINK_SCOPE, LEGACY_PRIVATE_LINK_SCOPE, KEY_VAULT):
        record["public_network_access"] = text(row, "publicNetworkAccess", problems)
        record["connections"] = _connections(row.get("privateEndpointConnections"), "privateEndpoint")
    if rtype == KEY_VAULT:
        record["network_acls_default_action"] = text(row, "networkAclsDefaultAction", problems)
    if rtype == PRIVATE_ENDPOINT:
        record["connections"] = _connections(row.get("privateLinkServiceConnections"), "privateLinkServiceId") + _connections(
            row.get("manualPrivateLinkServiceConnections"), "privateLinkServiceId"
        )
    if rtype == ARC_GATEWAY:
        record["gateway_type"] = text(row, "gatewayType", problems)
    if rtype == LOGICAL_NETWORK:
        record["subnets"] = _subnets(row.get("subnets"))
    record["problems"] = problems.items
    return record


def provisioned_instance_record(body: dict[str, Any] | None) -> dict[str, Any]:
    """AKS on Azure Local network profile from the ARM GET of provisionedClusterInstances/default."""
    if body is None:
        return {"found": False}
    props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
    network = props.get("networkProfile") if isinstance(props.get("networkProfile"), dict) else {}
    infra = (
        ((props.get("cloudProviderProfile") or {}).get("infraNetworkProfile") or {})
        if isinstance(props.get("cloudProviderProfile"), dict)
        else {}
    )
    subnet_ids = infra.get("vnetSubnetIds") if isinstance(infra, dict) else None
    control_plane = props.get("controlPlane") if isinstance(props.get("controlPlane"), dict) else {}
    endpoint = control_plane.get("controlPlaneEndpoint") if isinstance(control_plane.get("controlPlaneEndpoint"), dict) else {}
    access = props.get("clusterVMAccessProfile") if isinstance(props.get("clusterVMAccessProfile"), dict) else {}
    policy = network.get("networkPolicy")
    ranges = access.get("authorizedIPRanges")
    return {
        "found": True,
        "network_policy": policy.lower()[:32] if isinstance(policy, str) and policy else None,
        "pod_cidr": str(network["podCidr"])[:64] if network.get("podCidr") else None,
        "load_balancer_count": (network.get("loadBalancerProfile") or {}).get("count")
        if isinstance(network.get("loadBalancerProfile"), dict)
        else None,
        "vnet_subnet_ids": sorted(filter(None, (arm_id(s) for s in subnet_ids))) if isinstance(subnet_ids, list) else [],
        "control_plane_host": str(endpoint.get("hostIP") or endpoint.get("hostIp") or "")[:64] or None,
        "authorized_ip_ranges": ranges[:MAX_TEXT] if isinstance(ranges, str) else None,
        "provisioning_state": str(props.get("provisioningState"))[:32] if props.get("provisioningState") else None,
    }


def network_path(facts: dict[str, Any]) -> str:
    private_link = facts.get("private_link_state")
    gateway = bool(facts.get("gateway_enabled")) or bool(facts.get("gateway_resource_id"))
    if private_link not in PRIVATE_LINK_STATES:
        return "unknown"
    if private_link == "Enabled":
        return "both" if gateway else "private_link"
    return "gateway" if gateway else "direct"


def finish(record: dict[str, Any]) -> dict[str, Any]:
    """Sort child lists so that the same Azure state always hashes the same."""
    for key, order in (("extensions", "name"), ("assessments", "key"), ("policy_states", "definition")):
        if key in record:
            record[key] = sorted(record[key], key=lambda item, o=order: (str(item.get(o)), json.dumps(item, sort_keys=True)))
    return record


def attach(records: dict[str, dict[str, Any]], children: Iterable[tuple[str, dict[str, Any]] | None], field: str) -> int:
    """Attach child rows to their owners by lower-cased id; returns how many had no owner."""
    orphans = 0
    for child in children:
        if child is None:
            continue
        owner, item = child
        target = records.get(owner)
        if target is None:
            orphans += 1
            continue
        target.setdefault(field, []).append(item)
    return orphans
