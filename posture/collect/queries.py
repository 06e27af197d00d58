"""Every Azure Resource Graph query Arc Posture sends, in one place.

The queries are constants: nothing from Azure or from a user is ever interpolated into KQL.
Scopes (subscriptions, management groups) travel in the request body, not in the query.
Each query projects `id` (ARG pages by it) and only the columns the controls read.
tests/posture/test_queries.py runs every query through Microsoft's Kusto parser (kql-lint).
"""

from __future__ import annotations

from dataclasses import dataclass

from posture.catalog.policies import POLICY_DEFINITION_IDS

# Pinned ARG api-version; the emulator and the official spec (azure-examples/resourcegraph.json)
# describe the same request and response shapes.
ARG_API_VERSION = "2022-10-01"
PROVISIONED_CLUSTER_API_VERSION = "2024-01-01"
# ARM GET under each AKS-on-Azure-Local cluster (its id first).
PROVISIONED_CLUSTER_INSTANCE_PATH = "/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default"

CONNECTED_CLUSTER = "microsoft.kubernetes/connectedclusters"
EXTENSION = "microsoft.kubernetesconfiguration/extensions"
ARC_PRIVATE_LINK_SCOPE = "microsoft.hybridcompute/privatelinkscopes"
LEGACY_PRIVATE_LINK_SCOPE = "microsoft.kubernetesconfiguration/privatelinkscopes"
PRIVATE_ENDPOINT = "microsoft.network/privateendpoints"
ARC_GATEWAY = "microsoft.hybridcompute/gateways"
LOGICAL_NETWORK = "microsoft.azurestackhci/logicalnetworks"
KEY_VAULT = "microsoft.keyvault/vaults"
NETWORK_RESOURCE_TYPES = (
    ARC_PRIVATE_LINK_SCOPE,
    LEGACY_PRIVATE_LINK_SCOPE,
    PRIVATE_ENDPOINT,
    ARC_GATEWAY,
    LOGICAL_NETWORK,
    KEY_VAULT,
)


@dataclass(frozen=True)
class Query:
    name: str
    table: str
    text: str


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


CLUSTERS = Query(
    "clusters",
    "resources",
    f"""resources
| where type =~ '{CONNECTED_CLUSTER}'
| project id, name, location, subscriptionId, resourceGroup, kind, tags,
    connectivityStatus = tostring(properties.connectivityStatus),
    lastConnectivityTime = tostring(properties.lastConnectivityTime),
    provisioningState = tostring(properties.provisioningState),
    distribution = tostring(properties.distribution),
    infrastructure = tostring(properties.infrastructure),
    kubernetesVersion = tostring(properties.kubernetesVersion),
    agentVersion = tostring(properties.agentVersion),
    privateLinkState = tostring(properties.privateLinkState),
    privateLinkScopeResourceId = tostring(properties.privateLinkScopeResourceId),
    gatewayEnabled = properties.gateway.enabled,
    gatewayResourceId = tostring(properties.gateway.resourceId),
    workloadIdentityEnabled = properties.securityProfile.workloadIdentity.enabled,
    oidcIssuerEnabled = properties.oidcIssuerProfile.enabled,
    azureRbacEnabled = properties.aadProfile.enableAzureRBAC,
    agentAutoUpgrade = tostring(properties.arcAgentProfile.agentAutoUpgrade)""",
)

# ARG stores extension properties in PascalCase (ExtensionType); ARM uses camelCase. Read both.
EXTENSIONS = Query(
    "extensions",
    "kubernetesconfigurationresources",
    f"""kubernetesconfigurationresources
| where type =~ '{EXTENSION}'
| where id contains '/microsoft.kubernetes/connectedclusters/'
| project id, name,
    extensionType = tolower(tostring(coalesce(properties.ExtensionType, properties.extensionType))),
    provisioningState = tostring(coalesce(properties.ProvisioningState, properties.provisioningState)),
    installState = tostring(coalesce(properties.InstallState, properties.installState)),
    version = tostring(coalesce(properties.Version, properties.version))""",
)

POLICY_STATES = Query(
    "policy_states",
    "policyresources",
    f"""policyresources
| where type =~ 'microsoft.policyinsights/policystates'
| where tolower(tostring(properties.policyDefinitionName)) in ({_quoted(POLICY_DEFINITION_IDS)})
| project id,
    resourceId = tolower(tostring(properties.resourceId)),
    policyDefinitionName = tolower(tostring(properties.policyDefinitionName)),
    policyAssignmentId = tostring(properties.policyAssignmentId),
    complianceState = tostring(properties.complianceState),
    timestamp = tostring(properties.timestamp)""",
)

# ARG writes resourceDetails.Id (PascalCase); the REST API writes id.
ASSESSMENTS = Query(
    "assessments",
    "securityresources",
    """securityresources
| where type =~ 'microsoft.security/assessments'
| where id contains '/microsoft.kubernetes/connectedclusters/'
| project id, name,
    resourceId = tolower(tostring(coalesce(properties.resourceDetails.Id,
        properties.resourceDetails.id, properties.resourceDetails.ResourceId))),
    displayName = tostring(properties.displayName),
    statusCode = tostring(properties.status.code),
    severity = tostring(properties.metadata.severity)""",
)

# Private Link Scopes, private endpoints, Arc gateways, logical networks and Key Vaults in one
# query: few rows, and one query instead of five saves quota. Columns a type lacks stay empty.
NETWORK_RESOURCES = Query(
    "network_resources",
    "resources",
    f"""resources
| where type in~ ({_quoted(NETWORK_RESOURCE_TYPES)})
| project id, name, type, location, subscriptionId, resourceGroup,
    provisioningState = tostring(properties.provisioningState),
    publicNetworkAccess = tostring(properties.publicNetworkAccess),
    networkAclsDefaultAction = tostring(properties.networkAcls.defaultAction),
    privateEndpointConnections = properties.privateEndpointConnections,
    privateLinkServiceConnections = properties.privateLinkServiceConnections,
    manualPrivateLinkServiceConnections = properties.manualPrivateLinkServiceConnections,
    gatewayType = tostring(properties.gatewayType),
    subnets = properties.subnets""",
)

SUBSCRIPTIONS = Query(
    "subscriptions",
    "resourcecontainers",
    """resourcecontainers
| where type =~ 'microsoft.resources/subscriptions'
| project id, subscriptionId, name,
    state = tostring(properties.state)""",
)

# Per subscription batch, in this order.
BATCH_QUERIES: tuple[Query, ...] = (CLUSTERS, EXTENSIONS, POLICY_STATES, ASSESSMENTS, NETWORK_RESOURCES)
ALL_QUERIES: tuple[Query, ...] = (*BATCH_QUERIES, SUBSCRIPTIONS)
