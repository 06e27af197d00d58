"""The shape every Resource Graph row must have before any of it may replace stored facts.

A row of the wrong shape (columns dropped, a string column holding a number or an object, a
null where ARG always writes a value) is damaged in transit or by the service, not a statement
about the cluster: it is refused whole and reported, and the last good facts stay.

Why JSON Schema: the rows are JSON objects, and a schema written as data states each query's
projection next to the query itself. fastjsonschema compiles it to plain Python (a few µs a row;
the `jsonschema` library takes some 200 µs, minutes at fleet scale); pydantic would add compiled
models for what is a check of plain dicts. Checks of content (an unknown enum value, an
unparseable date) stay in posture/normalize.py: such a row is well-formed and its odd values are
kept as problems.

What is required follows what ARG writes: `tostring(...)` always yields a string ("" when the
property is absent) and id, name, location, subscriptionId and resourceGroup always exist.
Dynamic columns (tags, kind, booleans, arrays) are null or left out when the property is
absent, so they may be missing; absent still reads as unknown.
"""

from __future__ import annotations

from typing import Any

import fastjsonschema

from posture.collect import queries

GUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
STRING = {"type": "string"}
NAMED = {"type": "string", "minLength": 1}
OPTIONAL_BOOL = {"type": ["boolean", "null"]}
OPTIONAL_ARRAY = {"type": ["array", "null"]}


def _row(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def _strings(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, STRING)


RESOURCE_BASE = {"id": NAMED, "name": NAMED, "location": STRING, "subscriptionId": {"type": "string", "pattern": GUID}}

SCHEMAS: dict[str, dict[str, Any]] = {
    queries.CLUSTERS.name: _row(
        {
            **RESOURCE_BASE,
            "resourceGroup": NAMED,
            **_strings(
                "connectivityStatus",
                "lastConnectivityTime",
                "provisioningState",
                "distribution",
                "infrastructure",
                "kubernetesVersion",
                "agentVersion",
                "privateLinkState",
                "privateLinkScopeResourceId",
                "gatewayResourceId",
                "agentAutoUpgrade",
            ),
        },
        {
            # A customer-onboarded cluster has no kind (absent or null).
            "kind": {"type": ["string", "null"]},
            "tags": {"type": ["object", "null"]},
            "gatewayEnabled": OPTIONAL_BOOL,
            "workloadIdentityEnabled": OPTIONAL_BOOL,
            "oidcIssuerEnabled": OPTIONAL_BOOL,
            "azureRbacEnabled": OPTIONAL_BOOL,
        },
    ),
    queries.NETWORK_RESOURCES.name: _row(
        {
            **RESOURCE_BASE,
            "type": NAMED,
            "resourceGroup": NAMED,
            **_strings("provisioningState", "publicNetworkAccess", "networkAclsDefaultAction", "gatewayType"),
        },
        {
            "privateEndpointConnections": OPTIONAL_ARRAY,
            "privateLinkServiceConnections": OPTIONAL_ARRAY,
            "manualPrivateLinkServiceConnections": OPTIONAL_ARRAY,
            "subnets": OPTIONAL_ARRAY,
        },
    ),
    queries.EXTENSIONS.name: _row(
        {"id": NAMED, "name": NAMED, **_strings("extensionType", "provisioningState", "installState", "version")}
    ),
    queries.POLICY_STATES.name: _row(
        {
            "id": NAMED,
            "resourceId": NAMED,
            "policyDefinitionName": NAMED,
            **_strings("policyAssignmentId", "complianceState", "timestamp"),
        }
    ),
    queries.ASSESSMENTS.name: _row({"id": NAMED, "name": NAMED, "resourceId": NAMED, **_strings("displayName", "statusCode", "severity")}),
    # The ARM GET of provisionedClusterInstances/default: a body without a properties object
    # describes nothing, and must not read as "found, every setting unknown".
    "provisioned_cluster_instance": {"type": "object", "required": ["properties"], "properties": {"properties": {"type": "object"}}},
}


class Shape:
    """A compiled row schema; the per-column checks only run to explain a refused row."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.check = fastjsonschema.compile(schema)
        self.required = schema.get("required", [])
        self.columns = {name: fastjsonschema.compile(sub) for name, sub in schema["properties"].items()}

    def issues(self, row: Any) -> list[dict[str, str]]:
        try:
            self.check(row)
            return []
        except fastjsonschema.JsonSchemaValueException:
            pass
        if not isinstance(row, dict):
            return [{"field": "(row)", "issue": "not an object"}]
        missing = [name for name in self.required if name not in row]
        # One entry for every missing column: a row that lost them all names them all.
        found = [{"field": ", ".join(missing)[:200], "issue": "missing"}] if missing else []
        for name, check in self.columns.items():
            if name in row:
                try:
                    check(row[name])
                except fastjsonschema.JsonSchemaValueException as error:
                    # Only our own rule, never the damaged value: that stays in the evidence.
                    found.append({"field": name, "issue": error.message.removeprefix("data ")[:100]})
        return found[:MAX_ISSUES]


MAX_ISSUES = 5
SHAPES = {name: Shape(schema) for name, schema in SCHEMAS.items()}


def issues(shape: str, row: Any) -> list[dict[str, str]]:
    """Why `row` is not a well-formed `shape` row (at most MAX_ISSUES reasons); [] when it is."""
    return SHAPES[shape].issues(row)
