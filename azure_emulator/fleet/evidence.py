"""Evidence rows about resources: cluster extensions, Azure Policy states, Defender assessments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from azure_emulator.fleet import catalog
from azure_emulator.fleet.clusters import MISSING, Profile
from azure_emulator.fleet.containers import SubPlan
from azure_emulator.fleet.context import GenContext
from azure_emulator.fleet.rand import Weighted, ago, iso, stable_guid

EXTENSION_TYPE = "microsoft.kubernetesconfiguration/extensions"
POLICY_STATE_TYPE = "microsoft.policyinsights/policystates"
ASSESSMENT_TYPE = "microsoft.security/assessments"
_EXT_STATE_COVER = (*catalog.EXTENSION_STATES, MISSING)
_EXT_STATE = Weighted(dict(zip((*catalog.EXTENSION_STATES, MISSING), (*catalog.EXTENSION_STATE_WEIGHTS, 2), strict=True)))
_INSTALL_STATE = {"Succeeded": "Installed", "Failed": "Failed", "Canceled": "Failed"}
_NOISE = Weighted({"Conflict": 35, "Exempt": 35, "Unknown": 10, "NotStarted": 10, "": 10})
_ASSESSMENT_STATUS = Weighted({"Healthy": 50, "Unhealthy": 35, "NotApplicable": 15})
_DETAILS_COVER = ("Id", "id", "ResourceId")
_DETAILS = Weighted({"Id": 90, "id": 7, "ResourceId": 3})
_DEFINITIONS = "/providers/Microsoft.Authorization/policyDefinitions"
_EMPTY: dict[str, Any] = {}  # shared read-only empty settings object


class EvidenceBuilder:
    """Per-subscription builder; rows share assignment ids and timestamps to save memory."""

    def __init__(self, ctx: GenContext, plan: SubPlan) -> None:
        self.ctx, self.plan = ctx, plan
        rng = ctx.rng
        self.timestamps = tuple(iso(ago(ctx.now, rng, timedelta(minutes=10), timedelta(hours=20))) for _ in range(3))
        self.guardrails = (
            catalog.NETWORK_GUARDRAIL_POLICIES
            if plan.index == 0
            else tuple(g for g in catalog.NETWORK_GUARDRAIL_POLICIES if rng.random() < 0.7)
        )
        self._assignments: dict[str, tuple[str, str, str, str]] = {}
        self._namespaces: dict[str, dict[str, Any]] = {}
        self._metadata = {
            name: {
                "displayName": name,
                "severity": severity,
                "assessmentType": "BuiltIn",
                "policyDefinitionId": f"{_DEFINITIONS}/{stable_guid(name)}",
            }
            for name, severity in (*catalog.ASSESSMENTS, *catalog.OTHER_ASSESSMENTS)
        }

    # -- extensions -----------------------------------------------------------------------------
    def extensions(self, p: Profile, cluster: dict[str, Any]) -> dict[str, str]:
        """Extension rows of a connected cluster; returns extension key -> provisioning state."""
        rng, installed = self.ctx.rng, {}
        for kind in catalog.EXTENSIONS:
            present = p.all_extensions if p.all_extensions is not None else rng.random() < kind.share
            if present:
                installed[kind.key] = self._extension(cluster["id"], cluster["resourceGroup"], kind)
        return installed

    def managed_cluster_extensions(self, count: int) -> None:
        """Extensions of AKS (Microsoft.ContainerService) clusters: the product must ignore them."""
        for n in range(count):
            base = (
                f"/subscriptions/{self.plan.sub_id}/resourceGroups/rg-aks-cloud/providers/"
                f"Microsoft.ContainerService/managedClusters/aks-cloud-{n:02d}"
            )
            for kind in (catalog.EXTENSIONS[4], catalog.EXTENSIONS[0]):
                self._extension(base, "rg-aks-cloud", kind)

    def _extension(self, parent_id: str, rg_lower: str, kind: catalog.ExtensionKind) -> str:
        ctx, rng = self.ctx, self.ctx.rng
        e = ctx.next("extension")
        state = _EXT_STATE_COVER[e] if e < len(_EXT_STATE_COVER) else _EXT_STATE.pick(rng)
        spellings = kind.type_spellings
        if e < 12:
            spelling = spellings[e % len(spellings)]
        else:
            spelling = spellings[0] if rng.random() < 0.85 else spellings[rng.randrange(len(spellings))]
        camel = e in (4, 9) or (e >= 12 and rng.random() < 0.1)  # the ARM API's casing
        version = kind.versions[rng.randrange(len(kind.versions))]
        row = ctx.base(
            f"{parent_id}/providers/Microsoft.KubernetesConfiguration/extensions/{kind.name}",
            kind.name,
            EXTENSION_TYPE,
            self.plan.sub_id,
            rg_lower,
        )
        if camel:
            props: dict[str, Any] = {
                "extensionType": spelling,
                "version": version,
                "currentVersion": version,
                "releaseTrain": "Stable",
                "autoUpgradeMinorVersion": True,
                "scope": {"cluster": {"releaseNamespace": kind.namespace}},
                "configurationSettings": _EMPTY,
                "statuses": [],
                "isSystemExtension": False,
            }
            if state != MISSING:
                props["provisioningState"] = state
        else:
            props = {
                "ExtensionType": spelling,
                "Version": version,
                "ReleaseTrain": "Stable",
                "AutoUpgradeMinorVersion": True,
                "Scope": self._scope(kind.namespace),
                "ConfigurationSettings": _EMPTY,
                "IsSystemExtension": False,
            }
            if state != MISSING:
                props["ProvisioningState"] = state
                props["InstallState"] = _INSTALL_STATE.get(state, "Pending")
        row["properties"] = props
        ctx.add("kubernetesconfigurationresources", self.plan.sub_id, row)
        return state

    def _scope(self, namespace: str) -> dict[str, Any]:
        if namespace not in self._namespaces:
            self._namespaces[namespace] = {"cluster": {"ReleaseNamespace": namespace}}
        return self._namespaces[namespace]

    # -- policy states --------------------------------------------------------------------------
    def cluster_policies(self, p: Profile, cluster: dict[str, Any], installed: dict[str, str]) -> None:
        rng = self.ctx.rng
        succeeded = {key for key, state in installed.items() if state == "Succeeded"}
        if p.distribution != catalog.AKS:
            self._policy_state(cluster, catalog.POLICY_ARC_EXTENSION, "policy" in succeeded)
        if p.distribution not in (catalog.AKS, "eks", "gke"):
            self._policy_state(cluster, catalog.POLICY_DEFENDER_EXTENSION, "defender" in succeeded)
        scope = cluster["properties"].get("privateLinkScopeResourceId")
        self._policy_state(cluster, catalog.POLICY_CLUSTER_PLS, bool(scope))
        if "policy" in installed:  # in-cluster guardrails need the Azure Policy extension
            for guid in self.guardrails:
                self._policy_state(cluster, guid, rng.random() < 0.7)
        if rng.random() < 0.25:
            unrelated = catalog.UNRELATED_POLICIES[rng.randrange(len(catalog.UNRELATED_POLICIES))]
            self._policy_state(cluster, unrelated, rng.random() < 0.5)

    def resource_policy(self, row_id: str, location: str, resource_type: str, guid: str, ok: bool) -> None:
        self._policy_state({"id": row_id, "location": location, "type": resource_type}, guid, ok)

    def _policy_state(self, resource: dict[str, Any], guid: str, compliant: bool) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        n = ctx.next("policy_state")
        if n < len(catalog.COMPLIANCE_STATES):
            state = catalog.COMPLIANCE_STATES[n]
        elif rng.random() < 0.04:
            state = _NOISE.pick(rng)
        else:
            state = "Compliant" if compliant else "NonCompliant"
        assignment_id, assignment_name, assignment_scope, definition_id = self._assignment(guid)
        resource_id = resource["id"]
        rg_lower = resource_id.split("/")[4].lower()
        name = f"{rng.getrandbits(64):016x}"
        row = ctx.base(
            f"{resource_id}/providers/Microsoft.PolicyInsights/policyStates/{name}",
            name,
            POLICY_STATE_TYPE,
            self.plan.sub_id,
            rg_lower,
        )
        row["location"] = resource["location"]
        row["properties"] = {
            "timestamp": self.timestamps[n % 3],
            "resourceId": resource_id,
            "resourceType": _ARM_TYPES.get(resource["type"], resource["type"]),
            "resourceLocation": resource["location"],
            "resourceGroup": rg_lower,
            "policyAssignmentId": assignment_id,
            "policyAssignmentName": assignment_name,
            "policyAssignmentScope": assignment_scope,
            "policyDefinitionId": definition_id,
            # A few states spell the GUID in upper case; the product lower-cases it.
            "policyDefinitionName": guid.upper() if n == 7 or rng.random() < 0.02 else guid,
            "policyDefinitionAction": "audit",
            "complianceState": state,
        }
        ctx.add("policyresources", self.plan.sub_id, row)

    def _assignment(self, guid: str) -> tuple[str, str, str, str]:
        if guid not in self._assignments:
            name = stable_guid("assignment", self.plan.sub_id, guid).replace("-", "")[:24]
            scope = f"/subscriptions/{self.plan.sub_id}"
            self._assignments[guid] = (
                f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}",
                name,
                scope,
                f"/providers/Microsoft.Authorization/policyDefinitions/{guid}",
            )
        return self._assignments[guid]

    # -- Defender assessments -------------------------------------------------------------------
    def cluster_assessments(self, cluster: dict[str, Any], count: int) -> None:
        first, total = self.ctx.rng.randrange(len(catalog.ASSESSMENTS)), len(catalog.ASSESSMENTS)
        self.assessments(cluster, [catalog.ASSESSMENTS[(first + i) % total][0] for i in range(count)])

    def assessments(self, resource: dict[str, Any], names: list[str]) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        for name in names:
            n = ctx.next("assessment")
            status = ("Healthy", "Unhealthy", "NotApplicable")[n] if n < 3 else _ASSESSMENT_STATUS.pick(rng)
            details_key = _DETAILS_COVER[n] if n < 3 else _DETAILS.pick(rng)
            key = stable_guid("assessment", name)
            row = ctx.base(
                f"{resource['id']}/providers/Microsoft.Security/assessments/{key}",
                key,
                ASSESSMENT_TYPE,
                self.plan.sub_id,
                resource["id"].split("/")[4].lower(),
            )
            since = self.timestamps[n % 3]
            status_body: dict[str, Any] = {
                "code": status,
                "statusChangeDate": since,
                "firstEvaluationDate": since,
            }
            if status == "Unhealthy":
                status_body["cause"] = "OffByPolicy" if n % 2 else "Unhealthy"
                status_body["description"] = "The resource does not meet the recommendation"
            source_key = "source" if details_key == "id" else "Source"
            row["properties"] = {
                "displayName": name,
                "status": status_body,
                "resourceDetails": {source_key: "Azure", details_key: resource["id"]},
                "metadata": self._metadata[name],
                "additionalData": _EMPTY,
            }
            ctx.add("securityresources", self.plan.sub_id, row)


_ARM_TYPES = {
    "microsoft.kubernetes/connectedclusters": "Microsoft.Kubernetes/connectedClusters",
    "microsoft.hybridcompute/privatelinkscopes": "Microsoft.HybridCompute/privateLinkScopes",
    "microsoft.keyvault/vaults": "Microsoft.KeyVault/vaults",
}
