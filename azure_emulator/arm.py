"""ARM GETs by resource id: AKS Arc provisionedClusterInstances/default and connected clusters."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from azure_emulator import errors
from azure_emulator.faults import Faults
from azure_emulator.fleet import Fleet
from azure_emulator.fleet.catalog import DISPLAY_REGIONS
from azure_emulator.messages import Request, Response, json_response
from azure_emulator.quota import ReadBuckets

API_VERSION = "2024-01-01"
_CLUSTER = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.kubernetes/connectedclusters/(?P<name>[^/]+)"
    r"(?P<instance>/providers/microsoft\.hybridcontainerservice/provisionedclusterinstances/default)?/?$"
)
_SUBSCRIPTION = re.compile(r"^/subscriptions/(?P<sub>[^/]+)")
_NOT_FOUND_HELP = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


class ResourceManager:
    def __init__(self, fleet: Fleet, faults: Faults, buckets: ReadBuckets, *, client_id: str, object_id: str) -> None:
        self.fleet = fleet
        self.faults = faults
        self.buckets = buckets
        self.client_id = client_id
        self.object_id = object_id

    def handle(self, request: Request, principal: str, count: Callable[[str, str], None]) -> Response:
        sub_match = _SUBSCRIPTION.match(request.path.lower())
        sub = sub_match.group("sub") if sub_match else ""
        decision = self.buckets.take(sub)
        headers = {"x-ms-ratelimit-remaining-subscription-reads": str(decision.remaining)}
        if not decision.allowed:
            count("arm_throttled", principal)
            return errors.arm_throttled(decision.retry_after, headers)
        count("arm_gets", principal)
        response = self._resolve(request, sub)
        response.headers.update(headers)
        return response

    def remaining_header(self, request: Request) -> dict[str, str]:
        """The read-limit header without consuming a read (for 401 answers)."""
        sub_match = _SUBSCRIPTION.match(request.path.lower())
        decision = self.buckets.take(sub_match.group("sub") if sub_match else "", consume=False)
        return {"x-ms-ratelimit-remaining-subscription-reads": str(decision.remaining)}

    def _resolve(self, request: Request, sub: str) -> Response:
        if request.method != "GET":
            return errors.arm_error(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{request.method}'.",
            )
        version = request.query.get("api-version")
        if not version:
            return errors.arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if sub not in self.fleet.subscriptions:
            return errors.arm_error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        lower_path = request.path.lower()
        match = _CLUSTER.match(lower_path)
        type_name = "provisionedClusterInstances" if match and match.group("instance") else "connectedClusters"
        if version != API_VERSION:
            return errors.arm_error(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for API version '{version}' and "
                f"type '{type_name}'. The supported api-versions are '{API_VERSION}'.",
            )
        if sub in self.faults.forbidden:
            action = (
                "Microsoft.HybridContainerService/provisionedClusterInstances/read"
                if type_name == "provisionedClusterInstances"
                else "Microsoft.Kubernetes/connectedClusters/read"
            )
            return errors.authorization_failed(self.client_id, self.object_id, action, request.path)
        segments = request.path.split("/")
        rg = segments[4] if len(segments) > 4 else ""
        cluster_id = lower_path[: match.end("name")] if match else ""
        cluster = self.fleet.cluster(cluster_id) if match else None
        if cluster is not None and match and match.group("instance"):
            instance = self.fleet.provisioned_cluster_instances.get(cluster_id)
            if instance is not None:
                return json_response(200, instance)
        elif cluster is not None:
            return json_response(200, _arm_cluster(cluster))
        resource = (
            "Microsoft.HybridContainerService/provisionedClusterInstances/default"
            if match and match.group("instance")
            else request.path.rstrip("/").split("/providers/")[-1]
        )
        return errors.arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{resource}' under resource group '{rg}' was not found. " + _NOT_FOUND_HELP,
        )


def _arm_cluster(row: dict[str, Any]) -> dict[str, Any]:
    """The ARM GET shape (GetClusterExample.json) of a cluster's ARG row."""
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "type": "Microsoft.Kubernetes/connectedClusters",
        "location": DISPLAY_REGIONS.get(row.get("location") or "", row.get("location")),
        "tags": copy.deepcopy(row.get("tags") or {}),
        "identity": copy.deepcopy(row.get("identity") or {"type": "None"}),
        "properties": copy.deepcopy(row.get("properties") or {}),
        "systemData": {"createdByType": "Application", "lastModifiedByType": "Application"},
    }
    if row.get("kind"):
        body["kind"] = row["kind"]
    return body
