"""Constant vocabulary of the generated fleet: regions, distributions, extensions, policies, ..."""

from __future__ import annotations

from dataclasses import dataclass

REGIONS = (
    "eastus",
    "eastus2",
    "westus2",
    "centralus",
    "westeurope",
    "northeurope",
    "uksouth",
    "germanywestcentral",
    "francecentral",
    "swedencentral",
    "southeastasia",
    "japaneast",
    "australiaeast",
    "canadacentral",
)
DISPLAY_REGIONS = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus2": "West US 2",
    "centralus": "Central US",
    "westeurope": "West Europe",
    "northeurope": "North Europe",
    "uksouth": "UK South",
    "germanywestcentral": "Germany West Central",
    "francecentral": "France Central",
    "swedencentral": "Sweden Central",
    "southeastasia": "Southeast Asia",
    "japaneast": "Japan East",
    "australiaeast": "Australia East",
    "canadacentral": "Canada Central",
}


@dataclass(frozen=True)
class Distribution:
    key: str
    values: tuple[str, ...]  # stored spellings of properties.distribution
    infrastructures: tuple[str, ...]
    k8s_versions: tuple[str, ...]


AKS = "aks"
DISTRIBUTIONS = {
    d.key: d
    for d in (
        Distribution("aks", ("AKS", "aks"), ("azure_stack_hci",), ("1.29.4", "1.30.4", "1.28.9")),
        Distribution(
            "k3s",
            ("k3s", "K3s"),
            ("generic", "azure_stack_edge", "vsphere"),
            ("v1.29.5+k3s1", "v1.30.2+k3s2", "v1.27.14+k3s1"),
        ),
        Distribution(
            "rancher_rke",
            ("rancher_rke", "RKE2"),
            ("vsphere", "generic"),
            ("v1.28.10+rke2r1", "v1.29.6+rke2r1"),
        ),
        Distribution(
            "openshift",
            ("openshift", "OpenShift"),
            ("vsphere", "azure", "generic"),
            ("v1.27.10+c79e5e2", "v1.28.11+add48d0"),
        ),
        Distribution("eks", ("eks", "EKS"), ("aws",), ("v1.29.3-eks-adc7111", "v1.30.0-eks-036c24b")),
        Distribution("gke", ("gke",), ("gcp",), ("v1.29.4-gke.1043002", "v1.30.1-gke.1329003")),
        Distribution(
            "generic",
            ("generic", "kind", "canonical"),
            ("generic", "windows_server", "vsphere"),
            ("1.28.7", "1.29.2"),
        ),
        Distribution(
            "aks_edge_k3s",
            ("aks_edge_k3s",),
            ("azure_stack_edge", "windows_server"),
            ("v1.28.5+k3s1",),
        ),
    )
}
DISTRIBUTION_WEIGHTS = {
    "aks": 30,
    "k3s": 20,
    "rancher_rke": 12,
    "openshift": 10,
    "eks": 8,
    "gke": 5,
    "generic": 10,
    "aks_edge_k3s": 5,
}
AGENT_VERSIONS = ("1.18.3", "1.19.4", "1.20.1", "1.21.10", "1.22.5", "1.23.2", "1.24.4")

# Hostile strings: markup, CSV formulas, very long and non-ASCII text. Names must stay valid in an
# ARM id, so the name variants avoid '/', '?', '#' and '%'.
LONG_TEXT = "very-long-" + "abcdefghij" * 25 + "-end"
HOSTILE_TEXT = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://evil","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    LONG_TEXT,
    "Кластер-производство",
    "生产集群-北京",
    "🚀🔥-edge-☸️",
    "מקבץ-ייצור",
    "مجموعة-الإنتاج",
)
# Cluster names carry the same text behind "test-", as a customer's own test clusters might: a
# sort by name then shows them after the generated names (aks-…, k3s-…, rancher-rke-…), not
# first, where markup and formulas would be the first rows a new user sees.
HOSTILE_NAME_PREFIX = "test-"
_HOSTILE_NAME_TEXT = (
    "<script>alert(1)<script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("evil","x")',
    "+cmd|' -C calc'!A0",
    "@SUM(1)",
    "-2+3",
    LONG_TEXT,
    "Кластер-производство",
    "生产集群-北京",
    "🚀🔥-edge-☸️",
    "מקבץ-ייצור",
    "مجموعة-الإنتاج",
    'it\'s "quoted" & <b>bold<b>',
)
HOSTILE_NAMES = tuple(HOSTILE_NAME_PREFIX + text for text in _HOSTILE_NAME_TEXT)


@dataclass(frozen=True)
class ExtensionKind:
    key: str
    name: str  # default extension resource name
    type_spellings: tuple[str, ...]
    share: float  # share of clusters that have it
    versions: tuple[str, ...]
    namespace: str


EXTENSIONS = (
    ExtensionKind(
        "policy",
        "azurepolicy",
        ("microsoft.policyinsights", "Microsoft.PolicyInsights", "MICROSOFT.POLICYINSIGHTS"),
        0.45,
        ("1.5.0", "1.7.1", "1.8.0"),
        "kube-system",
    ),
    ExtensionKind(
        "defender",
        "microsoft.azuredefender.kubernetes",
        ("microsoft.azuredefender.kubernetes", "Microsoft.AzureDefender.Kubernetes"),
        0.35,
        ("0.7.16", "0.8.8"),
        "mdc",
    ),
    ExtensionKind(
        "keyvault",
        "akvsecretsprovider",
        ("Microsoft.AzureKeyVaultSecretsProvider", "microsoft.azurekeyvaultsecretsprovider"),
        0.2,
        ("1.5.4", "1.6.0"),
        "kube-system",
    ),
    ExtensionKind(
        "secretstore",
        "ssarcextension",
        ("microsoft.azure.secretstore", "Microsoft.Azure.SecretStore"),
        0.08,
        ("0.5.1", "1.0.0"),
        "azure-secret-store",
    ),
    ExtensionKind(
        "flux",
        "flux",
        ("microsoft.flux", "Microsoft.Flux"),
        0.3,
        ("1.11.2", "1.12.0"),
        "flux-system",
    ),
    ExtensionKind(
        "monitor",
        "azuremonitor-containers",
        ("Microsoft.AzureMonitor.Containers", "microsoft.azuremonitor.containers"),
        0.45,
        ("3.1.21", "3.1.24"),
        "kube-system",
    ),
)
EXTENSION_STATES = ("Succeeded", "Failed", "Creating", "Updating", "Deleting", "Canceled")
EXTENSION_STATE_WEIGHTS = (85, 5, 3, 3, 2, 2)

# Audit definitions the product reads (posture/catalog/policies.py POLICY_DEFINITION_IDS).
POLICY_ARC_EXTENSION = "6b2122c1-8120-4ff5-801b-17625a355590"
POLICY_DEFENDER_EXTENSION = "8dfab9c4-fe7b-49ad-85e4-1e9be085358f"
POLICY_CLUSTER_PLS = "12e7176a-4919-47ef-922b-34eda4c7f0ce"
POLICY_PLS_PUBLIC_ACCESS = "898f2439-3333-4713-af25-f1d78bc50556"
POLICY_PLS_PRIVATE_ENDPOINT = "7eab1da3-2bf0-4ff0-8303-1a4277c380e8"
NETWORK_GUARDRAIL_POLICIES = (
    "233a2a17-77ca-4fb1-9b6b-69223d272a44",
    "82985f06-dc18-4a48-bc1c-b9f4f0098cfe",
    "1a5b4dca-0b6f-4cf5-907c-56316bc1bf3d",
    "d46c275d-1680-448d-b2ec-e495a3b6cc89",
    "3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e",
)
POLICY_KV_PUBLIC_ACCESS = "405c5871-3e91-4644-8a63-58e19d68ff5b"
POLICY_KV_PRIVATE_LINK = "a6abeaec-4d90-4a02-805f-6b26c4d3fbe9"
POLICY_KV_FIREWALL = "55615ac9-af46-4a59-874e-391cc3dfb490"
PRODUCT_POLICIES = (
    POLICY_ARC_EXTENSION,
    POLICY_DEFENDER_EXTENSION,
    POLICY_CLUSTER_PLS,
    POLICY_PLS_PUBLIC_ACCESS,
    POLICY_PLS_PRIVATE_ENDPOINT,
    *NETWORK_GUARDRAIL_POLICIES,
    POLICY_KV_PUBLIC_ACCESS,
    POLICY_KV_PRIVATE_LINK,
    POLICY_KV_FIREWALL,
)
# Unrelated built-ins (allowed images, resource limits, privileged containers): filter noise.
UNRELATED_POLICIES = (
    "febd0533-8e55-448f-b837-bd0e06f16469",
    "e345eecc-fa47-480f-9e88-67dcc122b164",
    "95edb821-ddaf-4404-9732-666045e056b4",
)
COMPLIANCE_STATES = ("Compliant", "NonCompliant", "Conflict", "Exempt", "Unknown", "NotStarted", "")

ASSESSMENTS = (
    ("Azure Arc-enabled Kubernetes clusters should have the Defender extension installed", "High"),
    (
        "Azure Arc-enabled Kubernetes clusters should have the Azure Policy extension installed",
        "High",
    ),
    ("Kubernetes clusters should be accessible only over HTTPS", "Medium"),
    ("Container images should be deployed from trusted registries only", "Medium"),
    ("Kubernetes clusters should disable automounting API credentials", "Low"),
)
OTHER_ASSESSMENTS = (
    ("Azure Key Vaults should use private link", "Medium"),
    ("Machines should have vulnerability findings resolved", "High"),
)

# name, display name, parent (None = under the tenant root group), share of workload subscriptions
MANAGEMENT_GROUPS = (
    ("contoso-platform", "Platform", None, 0),
    ("contoso-connectivity", "Connectivity", "contoso-platform", 0),
    ("contoso-landingzones", "Landing zones", None, 0),
    ("contoso-corp", "Corp", "contoso-landingzones", 25),
    ("contoso-online", "Online", "contoso-landingzones", 15),
    ("contoso-edge", "Edge", "contoso-landingzones", 0),
    ("contoso-edge-retail", "Edge retail", "contoso-edge", 30),
    ("contoso-edge-factory", "Edge factory", "contoso-edge", 20),
    ("contoso-sandbox", "Sandbox", None, 10),
)
HUB_GROUP = "contoso-connectivity"
