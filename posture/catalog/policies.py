"""Azure Policy built-in definitions the controls cite or read states of.

Source: Azure/azure-policy built-in-policies/policyDefinitions (public cloud). Policy states are
matched by definition GUID, never by display name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyDefinition:
    guid: str
    display_name: str
    effect: str
    version: str
    path: str

    @property
    def definition_id(self) -> str:
        return f"/providers/Microsoft.Authorization/policyDefinitions/{self.guid}"


def _p(guid: str, name: str, effect: str, version: str, path: str) -> PolicyDefinition:
    return PolicyDefinition(guid, name, effect, version, path)


POLICIES: dict[str, PolicyDefinition] = {
    p.guid: p
    for p in [
        _p(
            "6b2122c1-8120-4ff5-801b-17625a355590",
            "Azure Arc enabled Kubernetes clusters should have the Azure Policy extension installed",
            "AuditIfNotExists",
            "1.1.0",
            "Kubernetes/ArcPolicyExtension_Audit.json",
        ),
        _p(
            "0adc5395-9169-4b9b-8687-af838d69410a",
            "Configure Azure Arc enabled Kubernetes clusters to install the Azure Policy extension",
            "DeployIfNotExists",
            "1.1.0",
            "Kubernetes/ArcPolicyExtension_DINE.json",
        ),
        _p(
            "8dfab9c4-fe7b-49ad-85e4-1e9be085358f",
            "[Preview]: Azure Arc enabled Kubernetes clusters should have Microsoft Defender for Cloud extension installed",
            "AuditIfNotExists",
            "6.0.0-preview",
            "Kubernetes/ASC_Azure_Defender_Arc_Extension_Audit.json",
        ),
        _p(
            "708b60a6-d253-4fe0-9114-4be4c00f012c",
            "[Preview]: Configure Azure Arc enabled Kubernetes clusters to install Microsoft Defender for Cloud extension",
            "DeployIfNotExists",
            "7.3.0-preview",
            "Kubernetes/ASC_Azure_Defender_Arc_Extension_DINE.json",
        ),
        _p(
            "12e7176a-4919-47ef-922b-34eda4c7f0ce",
            "Azure Arc-enabled kubernetes clusters should be configured with an Azure Arc Private Link Scope",
            "Audit",
            "1.0.0",
            "Azure Arc/Arc_KubernetesCluster_PrivateLinkEnabled_Deny.json",
        ),
        _p(
            "4002015b-1272-4dfb-8943-fed4aeec39b6",
            "Configure Azure Arc-enabled Kubernetes clusters to use an Azure Arc Private Link Scope",
            "Modify",
            "1.0.0",
            "Azure Arc/Arc_KubernetesCluster_PrivateLinkEnabled_Modify.json",
        ),
        _p(
            "898f2439-3333-4713-af25-f1d78bc50556",
            "Azure Arc Private Link Scopes should disable public network access",
            "Audit",
            "1.0.0",
            "Azure Arc/Arc_PrivateLinkScope_PublicAccess_Deny.json",
        ),
        _p(
            "de0bc8ea-76e2-4fe2-a288-a07556d0e9c4",
            "Configure Azure Arc Private Link Scopes to disable public network access",
            "Modify",
            "1.0.0",
            "Azure Arc/Arc_PrivateLinkScope_PublicAccess_Modify.json",
        ),
        _p(
            "7eab1da3-2bf0-4ff0-8303-1a4277c380e8",
            "Azure Arc Private Link Scopes should be configured with a private endpoint",
            "Audit",
            "1.0.0",
            "Azure Arc/Arc_PrivateEndpoint_Audit.json",
        ),
        _p(
            "d6eeba80-df61-4de5-8772-bc1b7852ba6b",
            "Configure Azure Arc Private Link Scopes with private endpoints",
            "DeployIfNotExists",
            "2.0.0",
            "Azure Arc/Arc_PrivateEndpoint_DINE.json",
        ),
        _p(
            "55c4db33-97b0-437b-8469-c4f4498f5df9",
            "Configure Azure Arc Private Link Scopes to use private DNS zones",
            "DeployIfNotExists",
            "1.2.0",
            "Azure Arc/Arc_PrivateEndpoint_DNS_DINE.json",
        ),
        _p(
            "233a2a17-77ca-4fb1-9b6b-69223d272a44",
            "Kubernetes cluster services should listen only on allowed ports",
            "Deny",
            "8.2.0",
            "Kubernetes/ServiceAllowedPorts.json",
        ),
        _p(
            "82985f06-dc18-4a48-bc1c-b9f4f0098cfe",
            "Kubernetes cluster pods should only use approved host network and port list",
            "Audit",
            "7.0.0",
            "Kubernetes/HostNetworkPorts.json",
        ),
        _p(
            "1a5b4dca-0b6f-4cf5-907c-56316bc1bf3d",
            "Kubernetes clusters should be accessible only over HTTPS",
            "Deny",
            "9.0.0",
            "Kubernetes/IngressHttpsOnly.json",
        ),
        _p(
            "d46c275d-1680-448d-b2ec-e495a3b6cc89",
            "Kubernetes cluster services should only use allowed external IPs",
            "Audit",
            "5.2.0",
            "Kubernetes/AllowedExternalIPs.json",
        ),
        _p(
            "3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e",
            "Kubernetes clusters should use internal load balancers",
            "Deny",
            "8.2.0",
            "Kubernetes/LoadbalancerNoPublicIPs.json",
        ),
        _p(
            "405c5871-3e91-4644-8a63-58e19d68ff5b",
            "Azure Key Vault should disable public network access",
            "Audit",
            "1.1.0",
            "Key Vault/PublicNetworkAccess_Audit.json",
        ),
        _p(
            "a6abeaec-4d90-4a02-805f-6b26c4d3fbe9",
            "Azure Key Vaults should use private link",
            "Audit",
            "1.2.1",
            "Key Vault/Should_Use_PrivateEndpoint_Audit.json",
        ),
        _p(
            "55615ac9-af46-4a59-874e-391cc3dfb490",
            "Azure Key Vault should have firewall enabled or public network access disabled",
            "Audit",
            "3.3.0",
            "Key Vault/FirewallEnabled_Audit.json",
        ),
        _p(
            "9d4fad1f-5189-4a42-b29e-cf7929c6b6df",
            "Configure Azure Key Vaults with private endpoints",
            "DeployIfNotExists",
            "1.0.1",
            "Key Vault/Should_Use_PrivateEndpoint_DINE.json",
        ),
    ]
}

# The in-cluster (Gatekeeper) network guardrails; they need the Azure Policy extension.
NETWORK_GUARDRAIL_POLICIES = (
    "233a2a17-77ca-4fb1-9b6b-69223d272a44",
    "82985f06-dc18-4a48-bc1c-b9f4f0098cfe",
    "1a5b4dca-0b6f-4cf5-907c-56316bc1bf3d",
    "d46c275d-1680-448d-b2ec-e495a3b6cc89",
    "3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e",
)

# Audit definitions whose states the scan reads (DINE/Modify ones are cited as remediation only).
POLICY_DEFINITION_IDS: tuple[str, ...] = (
    "6b2122c1-8120-4ff5-801b-17625a355590",
    "8dfab9c4-fe7b-49ad-85e4-1e9be085358f",
    "12e7176a-4919-47ef-922b-34eda4c7f0ce",
    "898f2439-3333-4713-af25-f1d78bc50556",
    "7eab1da3-2bf0-4ff0-8303-1a4277c380e8",
    *NETWORK_GUARDRAIL_POLICIES,
    "405c5871-3e91-4644-8a63-58e19d68ff5b",
    "a6abeaec-4d90-4a02-805f-6b26c4d3fbe9",
    "55615ac9-af46-4a59-874e-391cc3dfb490",
)
