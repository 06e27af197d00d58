"""The control catalog: what each control checks, why, how to fix it, and what it answers to.

Data only. The check behind each control is posture/evaluate/checks.py, keyed by the same id;
docs/controls.md is generated from this module (`manage.py catalog_docs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posture.catalog.frameworks import Ref

SEVERITY_WEIGHTS = {"high": 3, "medium": 2, "low": 1}


READS, CHANGES = "reads", "changes"


@dataclass(frozen=True)
class Command:
    """A command template: {name} {resource_group} {subscription_id} {location} {id} {scope_id}
    come from the cluster. `effect` says whether running it only reads (READS) or creates,
    updates or assigns something (CHANGES)."""

    template: str
    effect: str


def reads(template: str) -> Command:
    return Command(template, READS)


def changes(template: str) -> Command:
    return Command(template, CHANGES)


@dataclass(frozen=True)
class Remediation:
    summary: str
    portal: tuple[str, ...] = ()
    commands: tuple[Command, ...] = ()
    policies: tuple[str, ...] = ()

    @property
    def az(self) -> tuple[str, ...]:
        """The command templates alone."""
        return tuple(command.template for command in self.commands)


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    recommendation: str  # section of the Microsoft article (R1, R2, R3)
    severity: str
    source: str  # where the evidence comes from: "Resource Graph", "Resource Manager", "attestation"
    rationale: str
    reads: tuple[str, ...]
    evidence: tuple[str, ...]
    semantics: dict[str, str]
    remediation: Remediation
    printed: tuple[Ref, ...] = ()
    closer: tuple[Ref, ...] = ()
    attestable: bool = False
    related: tuple[str, ...] = field(default=())

    @property
    def weight(self) -> int:
        return SEVERITY_WEIGHTS[self.severity]

    @property
    def references(self) -> tuple[Ref, ...]:
        return (Ref("msft-arc-network", self.recommendation), *self.printed, *self.closer)


R1_PRINTED = (Ref("msft-printed", "R1-CIS"), Ref("msft-printed", "R1-NIST"), Ref("msft-printed", "R1-NSA"), Ref("msft-printed", "R1-OWASP"))
R2_PRINTED = (Ref("msft-printed", "R2-NIST"), Ref("msft-printed", "R2-NSA"))
AZ_CLUSTER = "-g {resource_group} -n {name} --subscription {subscription_id}"
AZ_EXT = (
    "az k8s-extension create --cluster-type connectedClusters --cluster-name {name} -g {resource_group} --subscription {subscription_id}"
)


def needs(variable: str) -> str:
    """A value the analyst chooses, as a shell variable that must be set: the command stops
    with "set VARIABLE" instead of reading `<placeholder>` as a redirection."""
    return f'"${{{variable}:?set {variable}}}"'


STALE = "The cluster is Offline, Expired or silent too long: a pass becomes unknown (stale); a fail stays a fail."

CONTROLS: tuple[Control, ...] = (
    Control(
        id="ARC-NP-01",
        title="A network policy engine enforces Kubernetes network policies",
        recommendation="R1",
        severity="high",
        source="Resource Manager",
        rationale="Kubernetes NetworkPolicy objects do nothing unless the CNI enforces them. AKS on Azure Local reports its CNI: Calico (the default) and Cilium enforce policies; Flannel, retired in December 2023, does not.",
        reads=("kind", "provisioned_instance.network_policy"),
        evidence=("kind", "network_policy"),
        semantics={
            "pass": "AKS on Azure Local reports networkProfile.networkPolicy calico or cilium.",
            "fail": "AKS on Azure Local reports flannel.",
            "unknown": "Other clusters (the CNI is not visible in Azure) unless attested; AKS on Azure Local whose profile could not be read or reports another value. "
            + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Run a CNI that enforces NetworkPolicy (Calico or Cilium). On AKS on Azure Local the network plugin cannot be changed: recreate Flannel clusters (Calico is the default).",
            portal=(
                "Azure Arc > Kubernetes clusters > the cluster > Properties: check the distribution; for AKS on Azure Local open the provisioned cluster's Networking blade.",
            ),
            commands=(reads("az aksarc show " + AZ_CLUSTER + " --query properties.networkProfile.networkPolicy"),),
        ),
        printed=R1_PRINTED,
        closer=(
            Ref("cis-k8s", "5.3.1"),
            Ref("nist-800-190", "4.3.3"),
            Ref("nsa-cisa", "checklist-1"),
            Ref("nsa-cisa", "network-policies"),
            Ref("owasp-k8s", "network-policies"),
        ),
        attestable=True,
    ),
    Control(
        id="ARC-NP-02",
        title="Every namespace has network policies, with a default deny",
        recommendation="R1",
        severity="high",
        source="attestation",
        rationale="Pods are non-isolated until a policy selects them. A default-deny policy per namespace, plus policies that allow only the required ingress and egress, limits lateral movement.",
        reads=(),
        evidence=("attestation",),
        semantics={
            "pass": "Never from Azure data: NetworkPolicy objects are not visible in Resource Graph.",
            "fail": "Never from Azure data.",
            "unknown": "Until an analyst attests it (with evidence such as `kubectl get networkpolicy -A`).",
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Create a default-deny NetworkPolicy in every namespace except kube-system, then allow the required flows. Attest it in Arc Posture with the output of `kubectl get networkpolicy -A`.",
            commands=(reads("kubectl get networkpolicy --all-namespaces"),),
        ),
        printed=R1_PRINTED,
        closer=(
            Ref("cis-k8s", "5.3.2"),
            Ref("nist-800-190", "4.3.3"),
            Ref("nist-800-190", "4.4.2"),
            Ref("nsa-cisa", "checklist-2"),
            Ref("nsa-cisa", "checklist-3"),
            Ref("owasp-k8s", "network-policies"),
        ),
        attestable=True,
    ),
    Control(
        id="ARC-NP-03",
        title="The Azure Policy extension is installed and healthy",
        recommendation="R1",
        severity="medium",
        source="Resource Graph",
        rationale="The Azure Policy extension (Gatekeeper) is what evaluates and enforces the in-cluster network guardrails; without it those policies report nothing.",
        reads=("extensions",),
        evidence=("extension", "provisioning_state"),
        semantics={
            "pass": "An extension of type microsoft.policyinsights is in provisioning state Succeeded.",
            "fail": "No such extension, or it is Failed or Canceled.",
            "unknown": "The extension is Creating, Updating or Deleting, or reports an unknown state. " + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Install the Azure Policy extension, or assign the DeployIfNotExists policy that installs it fleet-wide.",
            portal=("Azure Arc > Kubernetes clusters > the cluster > Extensions > + Add > Azure Policy.",),
            commands=(changes(AZ_EXT + " --extension-type Microsoft.PolicyInsights --name azurepolicy"),),
            policies=("6b2122c1-8120-4ff5-801b-17625a355590", "0adc5395-9169-4b9b-8687-af838d69410a"),
        ),
        closer=(Ref("owasp-k8s", "policy-management"),),
    ),
    Control(
        id="ARC-NP-04",
        title="In-cluster network guardrails are assigned and compliant",
        recommendation="R1",
        severity="high",
        source="Resource Graph",
        rationale="Azure Policy's Kubernetes built-ins keep services on allowed ports, pods off the host network, ingress on HTTPS, external IPs on an allow list and load balancers internal.",
        reads=("policy_states", "extensions"),
        evidence=("assigned", "non_compliant", "states"),
        semantics={
            "pass": "At least one network guardrail built-in is assigned and every assigned one is Compliant (or Exempt).",
            "fail": "A guardrail is NonCompliant, or none is assigned.",
            "unknown": "The Azure Policy extension is missing (nothing can be evaluated) or a state is Conflict or unknown. " + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Assign the network guardrail built-ins (audit first, then deny) at the subscription or management group, and fix the workloads they report.",
            commands=(
                changes(
                    "az policy assignment create --name arc-allowed-ports --policy 233a2a17-77ca-4fb1-9b6b-69223d272a44 --scope /subscriptions/{subscription_id}"
                ),
                changes(
                    "az policy assignment create --name arc-host-network --policy 82985f06-dc18-4a48-bc1c-b9f4f0098cfe --scope /subscriptions/{subscription_id}"
                ),
                reads("az policy state list --resource {id} --filter \"complianceState eq 'NonCompliant'\""),
            ),
            policies=(
                "233a2a17-77ca-4fb1-9b6b-69223d272a44",
                "82985f06-dc18-4a48-bc1c-b9f4f0098cfe",
                "1a5b4dca-0b6f-4cf5-907c-56316bc1bf3d",
                "d46c275d-1680-448d-b2ec-e495a3b6cc89",
                "3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e",
            ),
        ),
        closer=(
            Ref("cis-k8s", "5.2.5"),
            Ref("cis-k8s", "5.2.13"),
            Ref("cis-k8s", "1.2.3"),
            Ref("nsa-cisa", "encryption"),
            Ref("nist-800-190", "4.4.2"),
            Ref("owasp-k8s", "sensitive-ports"),
        ),
        related=("ARC-NP-03",),
    ),
    Control(
        id="ARC-PL-01",
        title="Private Link is enabled with a Private Link Scope",
        recommendation="R3",
        severity="medium",
        source="Resource Graph",
        rationale="With Private Link the Arc agents reach Azure Arc through a private endpoint in your network instead of public endpoints, and data can be kept from leaving through unauthorized paths.",
        reads=("private_link_state", "private_link_scope_id", "gateway_enabled", "gateway_resource_id"),
        evidence=("private_link_state", "private_link_scope_id"),
        semantics={
            "pass": "privateLinkState is Enabled and privateLinkScopeResourceId is set.",
            "fail": "privateLinkState is Disabled (and no Arc gateway is used), or Enabled without a scope id.",
            "unknown": "privateLinkState is missing or has an unknown value. " + STALE,
            "not_applicable": "The cluster uses the Arc gateway instead: the two are alternative designs.",
        },
        remediation=Remediation(
            "Create an Arc Private Link Scope with a private endpoint and onboard the cluster to it (the onboarding command from Microsoft's Private Link article), or assign the Modify policy.",
            commands=(
                changes(
                    "az connectedk8s connect "
                    + AZ_CLUSTER
                    + " -l {location} --enable-private-link true --private-link-scope-resource-id "
                    + needs("PRIVATE_LINK_SCOPE_ID")
                ),
            ),
            policies=("12e7176a-4919-47ef-922b-34eda4c7f0ce", "4002015b-1272-4dfb-8943-fed4aeec39b6"),
        ),
        closer=(Ref("nist-800-190", "4.4.2"),),
    ),
    Control(
        id="ARC-PL-02",
        title="The cluster's Private Link Scope denies public network access",
        recommendation="R3",
        severity="medium",
        source="Resource Graph",
        rationale="A scope that still allows public network access lets its resources keep talking to Azure Arc over the internet, which defeats the private path.",
        reads=("private_link_scope_id", "scope.public_network_access"),
        evidence=("scope", "public_network_access"),
        semantics={
            "pass": "The scope's publicNetworkAccess is Disabled (or SecuredByPerimeter).",
            "fail": "publicNetworkAccess is Enabled.",
            "unknown": "The scope is not in the scanned inventory, or the property is missing or unknown. " + STALE,
            "not_applicable": "Private Link is not enabled on the cluster.",
        },
        remediation=Remediation(
            "Disable public network access on the Private Link Scope (or assign the Modify policy fleet-wide).",
            commands=(changes("az resource update --ids {scope_id} --set properties.publicNetworkAccess=Disabled"),),
            policies=("898f2439-3333-4713-af25-f1d78bc50556", "de0bc8ea-76e2-4fe2-a288-a07556d0e9c4"),
        ),
        closer=(Ref("nist-800-190", "4.4.2"),),
        related=("ARC-PL-01",),
    ),
    Control(
        id="ARC-PL-03",
        title="The Private Link Scope has an approved hybridcompute endpoint in the cluster's region",
        recommendation="R3",
        severity="high",
        source="Resource Graph",
        rationale="Private Link works only through an approved private endpoint (sub-resource hybridcompute); the cluster, the scope and the endpoint's network must share a region.",
        reads=("private_link_scope_id", "scope.connections", "endpoint.location", "endpoint.group_ids"),
        evidence=("scope", "scope_location", "endpoints"),
        semantics={
            "pass": "The scope is in the cluster's region and has an Approved connection whose endpoint targets hybridcompute in that region.",
            "fail": "No Approved connection, or the scope or every approved endpoint is in another region.",
            "unknown": "The scope or its endpoints are outside the scanned inventory, so region and group cannot be checked. " + STALE,
            "not_applicable": "Private Link is not enabled on the cluster.",
        },
        remediation=Remediation(
            "Create a private endpoint (group id hybridcompute) for the scope in the cluster's region and approve its connection; configure the three privatelink DNS zones.",
            commands=(
                changes(
                    f"az network private-endpoint create -g {needs('NETWORK_RG')} -n pe-{{name}} --vnet-name {needs('VNET')} --subnet {needs('SUBNET')}"
                    " --private-connection-resource-id {scope_id} --group-id hybridcompute --connection-name {name}-arc -l {location}"
                ),
            ),
            policies=(
                "7eab1da3-2bf0-4ff0-8303-1a4277c380e8",
                "d6eeba80-df61-4de5-8772-bc1b7852ba6b",
                "55c4db33-97b0-437b-8469-c4f4498f5df9",
            ),
        ),
        closer=(Ref("nist-800-190", "4.4.2"),),
        related=("ARC-PL-01",),
    ),
    Control(
        id="ARC-NET-01",
        title="Outbound traffic to Azure is minimized: Private Link or Arc gateway",
        recommendation="R2",
        severity="medium",
        source="Resource Graph",
        rationale="A cluster talking to every Arc endpoint directly needs many firewall openings. Private Link or the Arc gateway reduce them to a few destinations that can be audited.",
        reads=("private_link_state", "gateway_enabled", "gateway_resource_id"),
        evidence=("network_path",),
        semantics={
            "pass": "The cluster uses Private Link or the Arc gateway.",
            "fail": "Neither: the cluster reaches every public Arc endpoint directly.",
            "unknown": "privateLinkState is missing. " + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Route the cluster through the Arc gateway (one gateway serves about 1,000 Arc resources per region) or through Private Link.",
            commands=(
                changes(
                    f"az arcgateway create --name {needs('GATEWAY_NAME')} --resource-group {needs('GATEWAY_RG')} --location {{location}}"
                    " --gateway-type public --allowed-features '*' --subscription {subscription_id}"
                ),
                changes("az connectedk8s update " + AZ_CLUSTER + " --gateway-resource-id " + needs("GATEWAY_ID")),
            ),
        ),
        printed=R2_PRINTED,
        closer=(Ref("nist-800-190", "4.4.2"), Ref("nsa-cisa", "control-plane")),
    ),
    Control(
        id="ARC-NET-02",
        title="Arc gateway is healthy and not combined with Private Link",
        recommendation="R2",
        severity="medium",
        source="Resource Graph",
        rationale="The Arc gateway documentation lists private endpoints (Private Link) as not supported together with the gateway; a gateway that did not provision leaves the agents without a path.",
        reads=("gateway_enabled", "gateway_resource_id", "private_link_state", "gateway.provisioning_state"),
        evidence=("gateway", "gateway_state", "private_link_state"),
        semantics={
            "pass": "The gateway is in use without Private Link and, where its resource is known, provisioned (Succeeded).",
            "fail": "Gateway and Private Link are both enabled (documented as unsupported), or the gateway resource is not Succeeded.",
            "unknown": STALE,
            "not_applicable": "The cluster does not use the Arc gateway.",
        },
        remediation=Remediation(
            "Choose one design: keep Private Link and disable the gateway, or keep the gateway and onboard without Private Link. Fix or recreate a gateway that failed to provision.",
            commands=(changes("az connectedk8s update " + AZ_CLUSTER + " --disable-gateway"),),
        ),
        printed=R2_PRINTED,
        closer=(Ref("nist-800-190", "4.4.2"),),
    ),
    Control(
        id="ARC-NET-03",
        title="Management and data traffic are separated",
        recommendation="R2",
        severity="medium",
        source="Resource Manager",
        rationale="A logical network of its own keeps AKS on Azure Local cluster traffic away from VMs and other clusters; only the documented ports (22, 6443, 55000, 65000) should cross from the management network.",
        reads=("provisioned_instance.vnet_subnet_ids", "logical_network.subnets"),
        evidence=("logical_networks", "shared_with"),
        semantics={
            "pass": "AKS on Azure Local: every logical network of the cluster serves only this cluster.",
            "fail": "A logical network is shared with VMs or other clusters.",
            "unknown": "Other clusters (not visible in Azure) unless attested; AKS on Azure Local whose logical networks are not in the inventory. "
            + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Give each AKS on Azure Local cluster a dedicated logical network (VLAN) and firewall the management network to the documented ports; for other clusters attest the segmentation.",
            commands=(
                reads("az aksarc show " + AZ_CLUSTER + " --query properties.cloudProviderProfile.infraNetworkProfile.vnetSubnetIds"),
            ),
        ),
        printed=R2_PRINTED,
        closer=(Ref("nist-800-190", "4.3.4"), Ref("nist-800-190", "4.3.3"), Ref("nsa-cisa", "worker-segmentation")),
        attestable=True,
    ),
    Control(
        id="ARC-NET-04",
        title="Firewall rules open only the required destinations",
        recommendation="R2",
        severity="medium",
        source="attestation",
        rationale="External firewall rules must match the Kubernetes and infrastructure layers: only the outbound and inbound destinations strictly required (the Arc network requirements list), no more.",
        reads=(),
        evidence=("attestation",),
        semantics={
            "pass": "Never from Azure data: on-premises firewalls are not visible in Azure.",
            "fail": "Never from Azure data.",
            "unknown": "Until an analyst attests the review (rule export, date, reviewer).",
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Review the firewall against Microsoft's Arc network requirements (fewer with the Arc gateway) and attest it with the rule export."
        ),
        printed=R2_PRINTED,
        closer=(Ref("nsa-cisa", "worker-segmentation"), Ref("owasp-k8s", "sensitive-ports"), Ref("nist-800-190", "4.4.2")),
        attestable=True,
    ),
    Control(
        id="ARC-KV-01",
        title="Key Vaults used by the cluster deny public access and use private endpoints",
        recommendation="R3",
        severity="medium",
        source="Resource Graph",
        rationale="Secrets synchronized into clusters should be fetched over a private endpoint from a vault that refuses public access.",
        reads=("extensions", "vaults in the subscription"),
        evidence=("vaults",),
        semantics={
            "pass": "Every Key Vault in the cluster's subscription disables public access and has an Approved private endpoint.",
            "fail": "A vault allows public access or has no approved private endpoint.",
            "unknown": "The cluster runs a vault extension but no vault is visible in its subscription. " + STALE,
            "not_applicable": "The cluster runs neither the Key Vault secrets provider nor the Secret Store extension.",
        },
        remediation=Remediation(
            "Disable public network access on the vault and give it a private endpoint (group id vault).",
            commands=(
                changes(f"az keyvault update --name {needs('VAULT')} --public-network-access Disabled"),
                changes(
                    f"az network private-endpoint create -g {needs('NETWORK_RG')} -n pe-{needs('VAULT')} --vnet-name {needs('VNET')} --subnet {needs('SUBNET')}"
                    f" --private-connection-resource-id {needs('VAULT_ID')} --group-id vault --connection-name {needs('VAULT')}-pe"
                ),
            ),
            policies=(
                "405c5871-3e91-4644-8a63-58e19d68ff5b",
                "a6abeaec-4d90-4a02-805f-6b26c4d3fbe9",
                "55615ac9-af46-4a59-874e-391cc3dfb490",
                "9d4fad1f-5189-4a42-b29e-cf7929c6b6df",
            ),
        ),
        closer=(Ref("cis-k8s", "5.4.2"), Ref("nsa-cisa", "secrets"), Ref("owasp-k8s", "securing-data")),
    ),
    Control(
        id="ARC-ID-01",
        title="Workload identity is enabled",
        recommendation="R3",
        severity="medium",
        source="Resource Graph",
        rationale="Workload identity federation lets pods get Entra tokens for Azure services such as Key Vault without secrets distributed to the cluster (see the Arc security book's workloads article).",
        reads=("workload_identity_enabled", "oidc_issuer_enabled"),
        evidence=("workload_identity_enabled", "oidc_issuer_enabled"),
        semantics={
            "pass": "securityProfile.workloadIdentity.enabled is true.",
            "fail": "It is false.",
            "unknown": "The property is missing. " + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Enable the OIDC issuer and workload identity (on AKS on Azure Local they are set when the cluster is created).",
            commands=(changes("az connectedk8s update " + AZ_CLUSTER + " --enable-oidc-issuer --enable-workload-identity"),),
        ),
        closer=(Ref("nsa-cisa", "service-account-tokens"), Ref("owasp-k8s", "securing-data")),
    ),
    Control(
        id="ARC-EV-01",
        title="Evidence is fresh: the cluster is connected",
        recommendation="R2",
        severity="medium",
        source="Resource Graph",
        rationale="What Azure knows about a cluster is only as current as its agent's last contact; an Offline or Expired cluster also stops receiving policy and configuration.",
        reads=("connectivity_status", "last_connectivity_time"),
        evidence=("connectivity_status", "last_connectivity_time", "hours_silent"),
        semantics={
            "pass": "connectivityStatus is Connected and the last contact is recent (ARC_STALE_AFTER_HOURS, default 24).",
            "fail": "Offline, Expired, AgentNotInstalled, or silent for longer than the threshold.",
            "unknown": "Connecting, missing or an unknown status.",
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Check the Arc agents (namespace azure-arc) and their outbound path; clusters Expired for 90 days must be onboarded again.",
            commands=(
                reads("az connectedk8s show " + AZ_CLUSTER + ' --query "{status: connectivityStatus, last: lastConnectivityTime}"'),
                reads("kubectl get pods -n azure-arc"),
            ),
        ),
        # No benchmark section fits; the agent's outbound path is what recommendation 2 configures.
    ),
    Control(
        id="ARC-DEF-01",
        title="Defender for Containers sensor is installed",
        recommendation="R2",
        severity="medium",
        source="Resource Graph",
        rationale="The Defender sensor watches runtime behaviour, including anomalous network activity, and reports cluster assessments.",
        reads=("extensions",),
        evidence=("extension", "provisioning_state"),
        semantics={
            "pass": "An extension of type microsoft.azuredefender.kubernetes is Succeeded.",
            "fail": "None, or Failed or Canceled.",
            "unknown": "Creating, Updating, Deleting or an unknown state. " + STALE,
            "not_applicable": "Never.",
        },
        remediation=Remediation(
            "Install the Defender extension, or assign the DeployIfNotExists policy.",
            commands=(changes(AZ_EXT + " --extension-type microsoft.azuredefender.kubernetes --name microsoft.azuredefender.kubernetes"),),
            policies=("8dfab9c4-fe7b-49ad-85e4-1e9be085358f", "708b60a6-d253-4fe0-9114-4be4c00f012c"),
        ),
        closer=(
            Ref("cis-k8s", "3.2"),
            Ref("nist-800-190", "4.4.4"),
            Ref("nsa-cisa", "threat-detection"),
            Ref("owasp-k8s", "monitor-network"),
        ),
    ),
)

CONTROLS_BY_ID: dict[str, Control] = {c.id: c for c in CONTROLS}
# Bump when a check's logic changes: every cluster is then re-evaluated in full.
CATALOG_VERSION = "2026.11.1"
