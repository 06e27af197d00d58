"""One check per catalog control: facts (+ context) → a verdict from Azure data alone.

The semantics each check implements are written in the catalog (posture/catalog/controls.py)
and in docs/controls.md. Details and evidence hold only values from the facts (never "now"),
so an unchanged cluster yields an unchanged verdict and nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from posture.catalog.policies import NETWORK_GUARDRAIL_POLICIES
from posture.evaluate.context import STALE_STATUSES, VAULT_EXTENSIONS, Context
from posture.evaluate.verdict import Verdict, failed, not_applicable, passed, unknown
from posture.models.results import Reason
from posture.normalize import network_path, parse_time

Facts = dict[str, Any]
Check = Callable[[Facts, Context], Verdict]

POLICY_EXTENSION = "microsoft.policyinsights"
DEFENDER_EXTENSION = "microsoft.azuredefender.kubernetes"
ENFORCING_CNIS = ("calico", "cilium")
IN_PROGRESS = {"creating", "updating", "deleting", "accepted", "provisioning"}
VM_NIC_SEGMENT = "/providers/microsoft.azurestackhci/networkinterfaces/"


def is_aks_on_azure_local(f: Facts) -> bool:
    return (f.get("kind") or "").lower() == "provisionedcluster"


def uses_gateway(f: Facts) -> bool:
    return bool(f.get("gateway_enabled")) or bool(f.get("gateway_resource_id"))


def _extension(f: Facts, extension_type: str, label: str) -> Verdict:
    found = [e for e in f.get("extensions") or [] if e.get("type") == extension_type]
    if not found:
        return failed(f"The {label} extension is not installed.", extension=None)
    states = sorted(str(e.get("provisioning_state")) for e in found)
    evidence = {"extension": found[0].get("name"), "provisioning_state": states[0] if len(states) == 1 else states}
    lowered = {s.lower() for s in states}
    if "succeeded" in lowered:
        return passed(f"The {label} extension is installed and Succeeded.", **evidence)
    if lowered & {"failed", "canceled"}:
        return failed(f"The {label} extension is {', '.join(states)}.", **evidence)
    if lowered & IN_PROGRESS:
        return unknown(Reason.IN_PROGRESS, f"The {label} extension is {', '.join(states)}.", **evidence)
    if lowered == {"none"}:
        return unknown(Reason.DATA_MISSING, f"The {label} extension reports no provisioning state.", **evidence)
    return unknown(Reason.UNKNOWN_VALUE, f"The {label} extension reports {', '.join(states)}.", **evidence)


def network_policy_engine(f: Facts, ctx: Context) -> Verdict:
    if not is_aks_on_azure_local(f):
        return unknown(
            Reason.NOT_VISIBLE,
            "Azure does not report the CNI of a customer-onboarded cluster; attest it.",
            kind=f.get("kind"),
            distribution=f.get("distribution"),
        )
    instance = f.get("provisioned_instance") or {}
    if not instance.get("found"):
        return unknown(Reason.DATA_MISSING, "Resource Manager returned no provisioned cluster instance.", kind=f.get("kind"))
    policy = instance.get("network_policy")
    evidence = {"kind": f.get("kind"), "network_policy": policy}
    if policy is None:
        return unknown(Reason.DATA_MISSING, "networkProfile.networkPolicy is missing.", **evidence)
    if policy in ENFORCING_CNIS:
        return passed(f"The cluster runs {policy}, which enforces NetworkPolicy.", **evidence)
    if policy == "flannel":
        return failed("The cluster runs Flannel, which does not enforce NetworkPolicy (retired December 2023).", **evidence)
    return unknown(Reason.UNKNOWN_VALUE, f"Unknown network policy {policy!r}.", **evidence)


def namespace_network_policies(f: Facts, ctx: Context) -> Verdict:
    return unknown(Reason.NOT_VISIBLE, "NetworkPolicy objects are not visible in Azure Resource Graph; attest them.")


def policy_extension(f: Facts, ctx: Context) -> Verdict:
    return _extension(f, POLICY_EXTENSION, "Azure Policy")


def network_guardrails(f: Facts, ctx: Context) -> Verdict:
    states = [p for p in f.get("policy_states") or [] if p.get("definition") in NETWORK_GUARDRAIL_POLICIES]
    summary = sorted(f"{p['definition']}: {p.get('state')}" for p in states)
    if not states:
        return failed("No network guardrail built-in is assigned to the cluster.", assigned=0)
    if policy_extension(f, ctx).status != "pass":
        return unknown(
            Reason.DEPENDS,
            "The Azure Policy extension is not healthy, so the guardrails cannot be evaluated (see ARC-NP-03).",
            assigned=len(states),
            states=summary,
        )
    non_compliant = sorted({p["definition"] for p in states if (p.get("state") or "").lower() == "noncompliant"})
    evidence = {"assigned": len(states), "non_compliant": non_compliant, "states": summary}
    if non_compliant:
        return failed(f"{len(non_compliant)} network guardrail(s) report NonCompliant.", **evidence)
    odd = [p.get("state") for p in states if (p.get("state") or "").lower() not in {"compliant", "exempt"}]
    if odd:
        return unknown(Reason.UNKNOWN_VALUE, f"Guardrail states {sorted(map(str, odd))} are neither compliant nor not.", **evidence)
    return passed(f"All {len(states)} assigned network guardrail state(s) are Compliant or Exempt.", **evidence)


def private_link_enabled(f: Facts, ctx: Context) -> Verdict:
    state, scope = f.get("private_link_state"), f.get("private_link_scope_id")
    evidence = {"private_link_state": state, "private_link_scope_id": scope}
    if state is None:
        return unknown(Reason.DATA_MISSING, "privateLinkState is missing.", **evidence)
    if state == "Enabled":
        if scope:
            return passed("Private Link is enabled with a Private Link Scope.", **evidence)
        return failed("Private Link is enabled but no Private Link Scope is set.", **evidence)
    if state != "Disabled":
        return unknown(Reason.UNKNOWN_VALUE, f"Unknown privateLinkState {state!r}.", **evidence)
    if uses_gateway(f):
        return not_applicable("The cluster uses the Arc gateway instead of Private Link.", **evidence)
    return failed("Private Link is disabled and no Arc gateway is used.", **evidence)


def _scope_of(f: Facts, ctx: Context) -> tuple[dict[str, Any] | None, Verdict | None]:
    if f.get("private_link_state") != "Enabled":
        return None, not_applicable("Private Link is not enabled on the cluster.")
    key = f.get("private_link_scope_id")
    if not key:
        return None, unknown(Reason.DEPENDS, "Private Link is enabled without a scope id (see ARC-PL-01).")
    scope = ctx.resource(key)
    if scope is None:
        return None, unknown(
            Reason.DATA_MISSING, "The Private Link Scope is not in the scanned inventory (another scope, or deleted).", scope=key
        )
    return scope, None


def scope_public_access(f: Facts, ctx: Context) -> Verdict:
    scope, early = _scope_of(f, ctx)
    if early:
        return early
    access = scope.get("public_network_access")
    evidence = {"scope": scope["id"], "public_network_access": access}
    if access is None:
        return unknown(Reason.DATA_MISSING, "The scope's publicNetworkAccess is missing.", **evidence)
    if access in ("Disabled", "SecuredByPerimeter"):
        return passed(f"The scope's public network access is {access}.", **evidence)
    if access == "Enabled":
        return failed("The Private Link Scope still allows public network access.", **evidence)
    return unknown(Reason.UNKNOWN_VALUE, f"Unknown publicNetworkAccess {access!r}.", **evidence)


def scope_private_endpoint(f: Facts, ctx: Context) -> Verdict:
    scope, early = _scope_of(f, ctx)
    if early:
        return early
    region = f.get("location")
    evidence: dict[str, Any] = {"scope": scope["id"], "scope_location": scope.get("location"), "endpoints": []}
    if scope.get("location") and region and scope["location"] != region:
        return failed(f"The scope is in {scope['location']}, the cluster in {region}: they must share a region.", **evidence)
    approved = [c for c in scope.get("connections") or [] if (c.get("status") or "").lower() == "approved"]
    if not approved:
        statuses = sorted(str(c.get("status")) for c in scope.get("connections") or [])
        return failed(f"The scope has no approved private endpoint connection ({', '.join(statuses) or 'none'}).", **evidence)
    unresolved = 0
    for connection in approved:
        endpoint = ctx.resource(connection.get("target"))
        if endpoint is None:
            unresolved += 1
            continue
        groups = set(connection.get("group_ids") or [])
        for link in endpoint.get("connections") or []:
            if link.get("target") == scope["id"].lower():
                groups |= set(link.get("group_ids") or [])
        evidence["endpoints"].append({"id": endpoint["id"], "location": endpoint.get("location"), "group_ids": sorted(groups)})
        if "hybridcompute" in groups and endpoint.get("location") == region:
            return passed("The scope has an approved hybridcompute private endpoint in the cluster's region.", **evidence)
    if unresolved:
        return unknown(
            Reason.DATA_MISSING,
            f"{unresolved} approved endpoint(s) are outside the scanned inventory; their region cannot be checked.",
            **evidence,
        )
    return failed("No approved hybridcompute endpoint of the scope is in the cluster's region.", **evidence)


def outbound_minimized(f: Facts, ctx: Context) -> Verdict:
    path = network_path(f)
    evidence = {"network_path": path}
    if path == "unknown":
        return unknown(Reason.DATA_MISSING, "privateLinkState is missing, so the network path is unknown.", **evidence)
    if path == "direct":
        return failed("The cluster reaches every public Arc endpoint directly: neither Private Link nor the Arc gateway.", **evidence)
    return passed(f"Outbound traffic goes through {path.replace('_', ' ')}.", **evidence)


def gateway_supported(f: Facts, ctx: Context) -> Verdict:
    if not uses_gateway(f):
        return not_applicable("The cluster does not use the Arc gateway.")
    gateway_id = f.get("gateway_resource_id")
    evidence = {"gateway": gateway_id, "private_link_state": f.get("private_link_state")}
    if f.get("private_link_state") == "Enabled":
        return failed(
            "Arc gateway and Private Link are both enabled; the Arc gateway documentation lists"
            " private endpoints as not supported with the gateway.",
            **evidence,
        )
    if not gateway_id:
        return passed(
            "The Arc gateway is in use (this API version does not expose its resource id, so its provisioning state was not checked).",
            **evidence,
        )
    gateway = ctx.resource(gateway_id)
    if gateway is None:
        return unknown(Reason.DATA_MISSING, "The gateway resource is not in the scanned inventory.", **evidence)
    evidence["gateway_state"] = gateway.get("provisioning_state")
    if gateway.get("provisioning_state") != "Succeeded":
        return failed(f"The Arc gateway's provisioning state is {gateway.get('provisioning_state')}.", **evidence)
    return passed("The Arc gateway is provisioned and used without Private Link.", **evidence)


def traffic_separated(f: Facts, ctx: Context) -> Verdict:
    if not is_aks_on_azure_local(f):
        return unknown(Reason.NOT_VISIBLE, "Network segmentation of a customer-onboarded cluster is not visible in Azure; attest it.")
    instance = f.get("provisioned_instance") or {}
    networks = instance.get("vnet_subnet_ids") or []
    if not instance.get("found") or not networks:
        return unknown(Reason.DATA_MISSING, "The cluster's logical networks are not known.")
    shared: list[str] = []
    for key in networks:
        network = ctx.resource(key)
        if network is None:
            return unknown(
                Reason.DATA_MISSING, "A logical network of the cluster is not in the scanned inventory.", logical_networks=networks
            )
        others = sorted(ctx.logical_network_users.get(key, set()) - {f["id"].lower()})
        vms = sorted({r for s in network.get("subnets") or [] for r in s.get("ip_configuration_refs") or [] if VM_NIC_SEGMENT in r})
        shared += [f"cluster {o.rsplit('/', 1)[-1]}" for o in others] + [
            f"VM NIC {v.split('/networkinterfaces/')[-1].split('/')[0]}" for v in vms
        ]
    evidence = {"logical_networks": networks, "shared_with": shared[:20]}
    if shared:
        return failed(f"The cluster's logical network is shared with {len(shared)} other workload(s).", **evidence)
    return passed("The cluster has logical networks of its own.", **evidence)


def firewall_reviewed(f: Facts, ctx: Context) -> Verdict:
    return unknown(Reason.NOT_VISIBLE, "On-premises firewall rules are not visible in Azure; attest the review.")


def key_vaults_private(f: Facts, ctx: Context) -> Verdict:
    extensions = sorted({e.get("type") for e in f.get("extensions") or []} & set(VAULT_EXTENSIONS))
    if not extensions:
        return not_applicable("The cluster runs no Key Vault extension.")
    vaults = ctx.vaults_by_subscription.get(f.get("subscription_id", ""), [])
    if not vaults:
        return unknown(
            Reason.DATA_MISSING, "The cluster syncs from Key Vault but no vault is visible in its subscription.", extensions=extensions
        )
    report, bad, unclear = [], 0, 0
    for vault in sorted(vaults, key=lambda v: v["id"]):
        access = vault.get("public_network_access")
        approved = any((c.get("status") or "").lower() == "approved" for c in vault.get("connections") or [])
        report.append({"vault": vault["name"], "public_network_access": access, "approved_endpoint": approved})
        if access == "Enabled" or not approved:
            bad += 1
        elif access != "Disabled":
            unclear += 1
    evidence = {"extensions": extensions, "vaults": report[:20]}
    if bad:
        return failed(f"{bad} of {len(vaults)} Key Vault(s) allow public access or lack an approved private endpoint.", **evidence)
    if unclear:
        return unknown(Reason.DATA_MISSING, f"{unclear} vault(s) do not report publicNetworkAccess.", **evidence)
    return passed(f"All {len(vaults)} Key Vault(s) deny public access and have approved private endpoints.", **evidence)


def workload_identity(f: Facts, ctx: Context) -> Verdict:
    enabled = f.get("workload_identity_enabled")
    evidence = {"workload_identity_enabled": enabled, "oidc_issuer_enabled": f.get("oidc_issuer_enabled")}
    if enabled is None:
        return unknown(Reason.DATA_MISSING, "securityProfile.workloadIdentity.enabled is missing.", **evidence)
    if enabled:
        return passed("Workload identity is enabled.", **evidence)
    return failed("Workload identity is disabled.", **evidence)


def evidence_fresh(f: Facts, ctx: Context) -> Verdict:
    status, last = f.get("connectivity_status"), f.get("last_connectivity_time")
    threshold = int(ctx.stale_after.total_seconds() // 3600)
    evidence = {"connectivity_status": status, "last_connectivity_time": last, "threshold_hours": threshold}
    if status is None:
        return unknown(Reason.DATA_MISSING, "connectivityStatus is missing.", **evidence)
    if status in STALE_STATUSES:
        return failed(f"The cluster is {status}.", **evidence)
    if status == "Connecting":
        return unknown(Reason.IN_PROGRESS, "The cluster is still connecting.", **evidence)
    if status != "Connected":
        return unknown(Reason.UNKNOWN_VALUE, f"Unknown connectivityStatus {status!r}.", **evidence)
    contact = parse_time(last) if last else None
    if ctx.is_stale(status, contact):  # the same rule that makes other verdicts stale
        return failed(f"Connected, but the last contact ({last}) is more than {threshold} h old.", **evidence)
    return passed("The cluster is connected.", **evidence)


def defender_sensor(f: Facts, ctx: Context) -> Verdict:
    return _extension(f, DEFENDER_EXTENSION, "Defender for Containers")


CHECKS: dict[str, Check] = {
    "ARC-NP-01": network_policy_engine,
    "ARC-NP-02": namespace_network_policies,
    "ARC-NP-03": policy_extension,
    "ARC-NP-04": network_guardrails,
    "ARC-PL-01": private_link_enabled,
    "ARC-PL-02": scope_public_access,
    "ARC-PL-03": scope_private_endpoint,
    "ARC-NET-01": outbound_minimized,
    "ARC-NET-02": gateway_supported,
    "ARC-NET-03": traffic_separated,
    "ARC-NET-04": firewall_reviewed,
    "ARC-KV-01": key_vaults_private,
    "ARC-ID-01": workload_identity,
    "ARC-EV-01": evidence_fresh,
    "ARC-DEF-01": defender_sensor,
}
