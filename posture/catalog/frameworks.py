"""The frameworks the controls answer to, with exact section numbers, titles and versions.

Two kinds of mapping are kept apart and always labelled:
- "As printed by Microsoft": the references exactly as the article prints them. Several were
  copied between the Arc security-book articles and fit poorly; they are shown, never corrected.
- "Closer fit (Arc Posture mapping)": our own mapping to the section that matches the control.

Sources: ../shared/reference/benchmarks.md (CIS titles checked against kube-bench cfg/cis-1.10).
CIS Benchmark text is under CIS terms of use: ids and titles only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRINTED, CLOSER = "printed", "closer"
ARTICLE_URL = "https://learn.microsoft.com/azure/azure-arc/kubernetes/conceptual-secure-your-network"


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    note: str = ""
    # For a reference as printed by Microsoft: the (framework, section) pairs its text names.
    cites: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    version: str
    url: str
    kind: str  # PRINTED or CLOSER
    sections: tuple[Section, ...] = field(default=())
    description: str = ""

    def section(self, section_id: str) -> Section:
        for section in self.sections:
            if section.id == section_id:
                return section
        raise KeyError(f"{self.id} has no section {section_id!r}")


ARTICLE = Framework(
    id="msft-arc-network",
    title='Microsoft: "Secure your network in Azure Arc-enabled Kubernetes"',
    version="ms.date 06/06/2025",
    url=ARTICLE_URL,
    kind=CLOSER,
    description="The article's three recommendations; every control implements one of them.",
    sections=(
        Section("R1", "Configure Kubernetes network policy to control access to/from your workloads"),
        Section("R2", "Configure your network infrastructure for further defense in depth"),
        Section(
            "R3",
            "Use Azure Private Link (preview) to access Azure resources",
            "The article prints no benchmark reference for this recommendation.",
        ),
    ),
)

PRINTED_REFERENCES = Framework(
    id="msft-printed",
    title="References as printed by Microsoft",
    version="ms.date 06/06/2025",
    url=ARTICLE_URL,
    kind=PRINTED,
    description=(
        "Exactly as the article prints them. Some were copied word for word between the Arc "
        "security-book articles: CIS Sections 1, 2 and 4 are control-plane, etcd and worker-node "
        "settings and NIST 4.5.1-3 are host OS countermeasures, neither about network policy. "
        "Arc Posture shows them unchanged and adds its own closer-fitting mapping beside them."
    ),
    sections=(
        Section(
            "R1-CIS",
            "CIS Kubernetes Benchmark - Sections 1, 2, and 4",
            "Printed under recommendation 1; fits poorly (control plane, etcd, worker nodes). Closer fit: CIS 5.3.1, 5.3.2.",
            cites=(("cis-k8s", "1"), ("cis-k8s", "2"), ("cis-k8s", "4")),
        ),
        Section(
            "R1-NIST",
            "NIST Application Container Security Guide - Section 4.5.1-3",
            "Printed under recommendation 1; fits poorly (host OS countermeasures). Closer fit: NIST 4.3.3, 4.4.2.",
            cites=(("nist-800-190", "4.5.1"), ("nist-800-190", "4.5.2"), ("nist-800-190", "4.5.3")),
        ),
        Section(
            "R1-NSA", "NSA Kubernetes Hardening Guidance \u2013 \u201cNetwork policies\u201d", cites=(("nsa-cisa", "network-policies"),)
        ),
        Section(
            "R1-OWASP",
            "Kubernetes Security - OWASP Cheat Sheet Series \u2013 \u201cUse Kubernetes network policies to control traffic\u201d",
            "The cheat sheet's heading continues \u201c... between pods and clusters\u201d.",
            cites=(("owasp-k8s", "network-policies"),),
        ),
        Section(
            "R2-NIST",
            "NIST Application Container Security Guide - Section 4.3.3, 4.3.4, and 4.4.2",
            cites=(("nist-800-190", "4.3.3"), ("nist-800-190", "4.3.4"), ("nist-800-190", "4.4.2")),
        ),
        Section(
            "R2-NSA", "NSA Kubernetes Hardening Guidance \u2013 \u201cControl plane hardening\u201d", cites=(("nsa-cisa", "control-plane"),)
        ),
    ),
)

CIS = Framework(
    id="cis-k8s",
    title="CIS Kubernetes Benchmark",
    version="1.10",
    url="https://www.cisecurity.org/benchmark/kubernetes",
    kind=CLOSER,
    description="Version 1.10 (Kubernetes 1.28); 5.3.1 and 5.3.2 keep their numbers in 1.8-1.12.",
    sections=(
        Section("1", "Control Plane Components"),
        Section("1.2.3", "Ensure that the DenyServiceExternalIPs is set"),
        Section("2", "etcd"),
        Section("3.2", "Logging"),
        Section("4", "Worker Nodes"),
        Section("5.2.5", "Minimize the admission of containers wishing to share the host network namespace"),
        Section("5.2.13", "Minimize the admission of containers which use HostPorts"),
        Section("5.3", "Network Policies and CNI"),
        Section("5.3.1", "Ensure that the CNI in use supports Network Policies"),
        Section("5.3.2", "Ensure that all Namespaces have Network Policies defined"),
        Section("5.4.2", "Consider external secret storage"),
    ),
)

NIST = Framework(
    id="nist-800-190",
    title="NIST SP 800-190 Application Container Security Guide",
    version="September 2017",
    url="https://csrc.nist.gov/pubs/sp/800/190/final",
    kind=CLOSER,
    description="Section 4, Countermeasures.",
    sections=(
        Section("4.2", "Registry Countermeasures"),
        Section("4.3.1", "Unbounded administrative access"),
        Section("4.3.3", "Poorly separated inter-container network traffic"),
        Section("4.3.4", "Mixing of workload sensitivity levels"),
        Section("4.3.5", "Orchestrator node trust"),
        Section("4.4.2", "Unbounded network access from containers"),
        Section("4.4.4", "App vulnerabilities"),
        Section("4.5.1", "Large attack surface"),
        Section("4.5.2", "Shared kernel"),
        Section("4.5.3", "Host OS component vulnerabilities"),
        Section("4.5.4", "Improper user access rights"),
        Section("4.5.5", "Host file system tampering"),
    ),
)

NSA = Framework(
    id="nsa-cisa",
    title="NSA/CISA Kubernetes Hardening Guidance",
    version="1.2 (August 2022)",
    url="https://media.defense.gov/2022/Aug/29/2003066362/-1/-1/0/CTR_KUBERNETES_HARDENING_GUIDANCE_1.2_20220829.PDF",
    kind=CLOSER,
    description="Cited by heading; page numbers are not recorded.",
    sections=(
        Section("network-policies", "Network separation and hardening \u203a Network policies"),
        Section("checklist-1", "Network Policies Checklist \u203a 1. Use CNI plugin that supports NetworkPolicy API"),
        Section(
            "checklist-2",
            "Network Policies Checklist \u203a 2. Create policies that select Pods using podSelector and/or the namespaceSelector",
        ),
        Section("checklist-3", "Network Policies Checklist \u203a 3. Use a default policy to deny all ingress and egress traffic"),
        Section("control-plane", "Network separation and hardening \u203a Control plane hardening"),
        Section("worker-segmentation", "Network separation and hardening \u203a Worker node segmentation"),
        Section("encryption", "Network separation and hardening \u203a Encryption"),
        Section("secrets", "Network separation and hardening \u203a Secrets"),
        Section("cloud-infrastructure", "Network separation and hardening \u203a Protecting sensitive cloud infrastructure"),
        Section("threat-detection", "Audit logging and threat detection \u203a Threat detection"),
        Section("service-account-tokens", "Kubernetes Pod Security \u203a Protecting Pod service account tokens"),
    ),
)

OWASP = Framework(
    id="owasp-k8s",
    title="OWASP Kubernetes Security Cheat Sheet",
    # Citations print "<title> <version>": the version must not repeat the title's words.
    version="2025",
    url="https://cheatsheetseries.owasp.org/cheatsheets/Kubernetes_Security_Cheat_Sheet.html",
    kind=CLOSER,
    description="Part of the OWASP Cheat Sheet Series, which has no version numbers: cited by the year it was read.",
    sections=(
        Section("sensitive-ports", "Section 2: Securing Kubernetes Components \u203a Controlling Network Access to Sensitive Ports"),
        Section("hosts", "Section 1: Securing Kubernetes Hosts"),
        Section("policy-management", "Section 4: Deploy Phase \u203a Implementing centralized policy management"),
        Section(
            "network-policies",
            "Section 4: Deploy Phase \u203a Use Kubernetes network policies to control traffic between pods and clusters",
        ),
        Section("securing-data", "Section 4: Deploy Phase \u203a Securing data"),
        Section(
            "monitor-network", "Section 5: Runtime Phase \u203a Monitor network traffic to limit unnecessary or insecure communication"
        ),
    ),
)

FRAMEWORKS: dict[str, Framework] = {f.id: f for f in (ARTICLE, PRINTED_REFERENCES, CIS, NIST, NSA, OWASP)}


@dataclass(frozen=True)
class Ref:
    """A citation: framework, section, and the framework version it was made against."""

    framework: str
    section: str

    @property
    def version(self) -> str:
        return FRAMEWORKS[self.framework].version

    @property
    def kind(self) -> str:
        return FRAMEWORKS[self.framework].kind

    def label(self) -> str:
        framework = FRAMEWORKS[self.framework]
        section = framework.section(self.section)
        if framework.kind == PRINTED:
            return section.title
        if framework.id == ARTICLE.id:
            return f"Recommendation {self.section[1:]}: {section.title}"
        number = f"{self.section} " if self.section[:1].isdigit() else ""
        return f"{framework.title} {framework.version} \u00a7 {number}{section.title}"
