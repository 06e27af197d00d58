"""Every control over pass, fail, unknown and not applicable, from ARG-shaped rows
(tests/posture/control_rows.py)."""

from __future__ import annotations

import pytest

from posture.evaluate.rules import evaluate_cluster
from posture.models.results import Reason, Status
from tests.posture.control_rows import (
    AKS,
    CLUSTER,
    GATEWAY_ID,
    GUARDRAIL,
    GW_NEW,
    GW_OLD,
    LNET,
    LNET_ROW,
    PE_ID,
    PL,
    POLICY_OK,
    RG,
    SUB,
    VAULT_ID,
    cluster_info,
    cluster_row,
    context,
    endpoint_row,
    extension,
    facts,
    instance,
    scope_row,
)

CASES = [
    # control, case, facts, context, expected status, expected reason (or None)
    ("ARC-NP-01", "calico on AKS Arc", facts(cluster_row(**AKS), instance=instance("Calico")), context(), "pass", None),
    ("ARC-NP-01", "cilium on AKS Arc", facts(cluster_row(**AKS), instance=instance("cilium")), context(), "pass", None),
    ("ARC-NP-01", "flannel on AKS Arc", facts(cluster_row(**AKS), instance=instance("flannel")), context(), "fail", None),
    (
        "ARC-NP-01",
        "network profile missing",
        facts(cluster_row(**AKS), instance={"properties": {}}),
        context(),
        "unknown",
        Reason.DATA_MISSING,
    ),
    ("ARC-NP-01", "instance not found", facts(cluster_row(**AKS), instance=None), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-NP-01", "unknown CNI value", facts(cluster_row(**AKS), instance=instance("weave")), context(), "unknown", Reason.UNKNOWN_VALUE),
    ("ARC-NP-01", "customer-onboarded cluster", facts(), context(), "unknown", Reason.NOT_VISIBLE),
    ("ARC-NP-02", "never visible", facts(), context(), "unknown", Reason.NOT_VISIBLE),
    ("ARC-NP-03", "PascalCase extension Succeeded", facts(extensions=[extension("microsoft.policyinsights")]), context(), "pass", None),
    (
        "ARC-NP-03",
        "camelCase extension, upper-case type",
        facts(extensions=[extension("Microsoft.PolicyInsights", casing="camel")]),
        context(),
        "pass",
        None,
    ),
    ("ARC-NP-03", "extension Failed", facts(extensions=[extension("microsoft.policyinsights", "Failed")]), context(), "fail", None),
    ("ARC-NP-03", "extension missing", facts(extensions=[extension("microsoft.flux")]), context(), "fail", None),
    (
        "ARC-NP-03",
        "extension Creating",
        facts(extensions=[extension("microsoft.policyinsights", "Creating")]),
        context(),
        "unknown",
        Reason.IN_PROGRESS,
    ),
    (
        "ARC-NP-03",
        "no provisioning state",
        facts(extensions=[extension("microsoft.policyinsights", None)]),
        context(),
        "unknown",
        Reason.DATA_MISSING,
    ),
    (
        "ARC-NP-03",
        "unknown provisioning state",
        facts(extensions=[extension("microsoft.policyinsights", "Borked")]),
        context(),
        "unknown",
        Reason.UNKNOWN_VALUE,
    ),
    ("ARC-NP-04", "compliant guardrail", facts(extensions=POLICY_OK, policy_states=[(GUARDRAIL, "Compliant")]), context(), "pass", None),
    (
        "ARC-NP-04",
        "exempt counts as compliant",
        facts(extensions=POLICY_OK, policy_states=[(GUARDRAIL, "Exempt")]),
        context(),
        "pass",
        None,
    ),
    (
        "ARC-NP-04",
        "non-compliant guardrail",
        facts(extensions=POLICY_OK, policy_states=[(GUARDRAIL, "Compliant"), ("82985f06-dc18-4a48-bc1c-b9f4f0098cfe", "NonCompliant")]),
        context(),
        "fail",
        None,
    ),
    (
        "ARC-NP-04",
        "no guardrail assigned",
        facts(extensions=POLICY_OK, policy_states=[("6b2122c1-8120-4ff5-801b-17625a355590", "Compliant")]),
        context(),
        "fail",
        None,
    ),
    ("ARC-NP-04", "extension missing", facts(policy_states=[(GUARDRAIL, "Compliant")]), context(), "unknown", Reason.DEPENDS),
    (
        "ARC-NP-04",
        "conflict state",
        facts(extensions=POLICY_OK, policy_states=[(GUARDRAIL, "Conflict")]),
        context(),
        "unknown",
        Reason.UNKNOWN_VALUE,
    ),
    ("ARC-PL-01", "enabled with scope", facts(cluster_row(**PL)), context(), "pass", None),
    ("ARC-PL-01", "enabled without scope id", facts(cluster_row(privateLinkState="Enabled")), context(), "fail", None),
    ("ARC-PL-01", "disabled, direct", facts(), context(), "fail", None),
    ("ARC-PL-01", "disabled, uses gateway (new shape)", facts(cluster_row(**GW_NEW)), context(), "not_applicable", None),
    ("ARC-PL-01", "state missing", facts(cluster_row(privateLinkState="")), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-PL-01", "odd state", facts(cluster_row(privateLinkState="Partial")), context(), "unknown", Reason.UNKNOWN_VALUE),
    ("ARC-PL-02", "scope denies public access (mixed-case ids)", facts(cluster_row(**PL)), context(scope_row()), "pass", None),
    ("ARC-PL-02", "scope allows public access", facts(cluster_row(**PL)), context(scope_row(access="Enabled")), "fail", None),
    ("ARC-PL-02", "scope property missing", facts(cluster_row(**PL)), context(scope_row(access="")), "unknown", Reason.DATA_MISSING),
    ("ARC-PL-02", "scope not in inventory", facts(cluster_row(**PL)), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-PL-02", "private link off", facts(), context(scope_row()), "not_applicable", None),
    ("ARC-PL-03", "approved endpoint in region", facts(cluster_row(**PL)), context(scope_row(), endpoint_row()), "pass", None),
    (
        "ARC-PL-03",
        "endpoint in another region",
        facts(cluster_row(**PL)),
        context(scope_row(), endpoint_row(location="westeurope")),
        "fail",
        None,
    ),
    ("ARC-PL-03", "endpoint for another group", facts(cluster_row(**PL)), context(scope_row(), endpoint_row(group="vault")), "fail", None),
    (
        "ARC-PL-03",
        "only a pending connection",
        facts(cluster_row(**PL)),
        context(scope_row(status="Pending"), endpoint_row()),
        "fail",
        None,
    ),
    (
        "ARC-PL-03",
        "scope in another region",
        facts(cluster_row(**PL)),
        context(scope_row(location="westus2"), endpoint_row()),
        "fail",
        None,
    ),
    ("ARC-PL-03", "endpoint outside inventory", facts(cluster_row(**PL)), context(scope_row()), "unknown", Reason.DATA_MISSING),
    ("ARC-PL-03", "private link off", facts(), context(), "not_applicable", None),
    ("ARC-NET-01", "private link", facts(cluster_row(**PL)), context(), "pass", None),
    ("ARC-NET-01", "gateway, old shape", facts(cluster_row(**GW_OLD)), context(), "pass", None),
    ("ARC-NET-01", "direct", facts(), context(), "fail", None),
    ("ARC-NET-01", "state missing", facts(cluster_row(privateLinkState="")), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-NET-02", "gateway and private link together", facts(cluster_row(**PL, **GW_NEW)), context(), "fail", None),
    (
        "ARC-NET-02",
        "healthy gateway, old shape",
        facts(cluster_row(**GW_OLD)),
        context({"id": GATEWAY_ID, "type": "microsoft.hybridcompute/gateways", "name": "gw1", "provisioningState": "Succeeded"}),
        "pass",
        None,
    ),
    (
        "ARC-NET-02",
        "failed gateway",
        facts(cluster_row(**GW_OLD)),
        context({"id": GATEWAY_ID, "type": "microsoft.hybridcompute/gateways", "name": "gw1", "provisioningState": "Failed"}),
        "fail",
        None,
    ),
    ("ARC-NET-02", "gateway resource unknown", facts(cluster_row(**GW_OLD)), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-NET-02", "new shape without id", facts(cluster_row(**GW_NEW)), context(), "pass", None),
    ("ARC-NET-02", "no gateway", facts(cluster_row(gatewayEnabled=False)), context(), "not_applicable", None),
    (
        "ARC-NET-03",
        "dedicated logical network",
        facts(cluster_row(**AKS), instance=instance()),
        context(LNET_ROW, lnet_users={LNET.lower(): {CLUSTER.lower()}}),
        "pass",
        None,
    ),
    (
        "ARC-NET-03",
        "shared with another cluster",
        facts(cluster_row(**AKS), instance=instance()),
        context(LNET_ROW, lnet_users={LNET.lower(): {CLUSTER.lower(), "/subscriptions/x/c2"}}),
        "fail",
        None,
    ),
    (
        "ARC-NET-03",
        "shared with VMs",
        facts(cluster_row(**AKS), instance=instance()),
        context(
            {
                **LNET_ROW,
                "subnets": [
                    {
                        "name": "s",
                        "properties": {
                            "ipConfigurationReferences": [
                                {"ID": f"{RG}/providers/Microsoft.AzureStackHCI/networkInterfaces/vm1-nic/ipConfigurations/ip"}
                            ]
                        },
                    }
                ],
            }
        ),
        "fail",
        None,
    ),
    (
        "ARC-NET-03",
        "logical network not in inventory",
        facts(cluster_row(**AKS), instance=instance()),
        context(),
        "unknown",
        Reason.DATA_MISSING,
    ),
    ("ARC-NET-03", "customer-onboarded", facts(), context(), "unknown", Reason.NOT_VISIBLE),
    ("ARC-NET-04", "never visible", facts(), context(), "unknown", Reason.NOT_VISIBLE),
    (
        "ARC-KV-01",
        "private vault",
        facts(extensions=[extension("microsoft.azurekeyvaultsecretsprovider")]),
        context(
            {
                "id": VAULT_ID,
                "type": "microsoft.keyvault/vaults",
                "name": "kv1",
                "subscriptionId": SUB,
                "publicNetworkAccess": "Disabled",
                "privateEndpointConnections": [
                    {"properties": {"privateEndpoint": {"id": PE_ID}, "privateLinkServiceConnectionState": {"status": "Approved"}}}
                ],
            }
        ),
        "pass",
        None,
    ),
    (
        "ARC-KV-01",
        "public vault",
        facts(extensions=[extension("microsoft.azure.secretstore")]),
        context(
            {"id": VAULT_ID, "type": "microsoft.keyvault/vaults", "name": "kv1", "subscriptionId": SUB, "publicNetworkAccess": "Enabled"}
        ),
        "fail",
        None,
    ),
    (
        "ARC-KV-01",
        "no vault visible",
        facts(extensions=[extension("microsoft.azure.secretstore")]),
        context(),
        "unknown",
        Reason.DATA_MISSING,
    ),
    ("ARC-KV-01", "no vault extension", facts(), context(), "not_applicable", None),
    ("ARC-ID-01", "enabled", facts(), context(), "pass", None),
    ("ARC-ID-01", "disabled", facts(cluster_row(workloadIdentityEnabled=False)), context(), "fail", None),
    ("ARC-ID-01", "missing", facts(cluster_row(workloadIdentityEnabled=None)), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-ID-01", "string instead of bool", facts(cluster_row(workloadIdentityEnabled="true")), context(), "pass", None),
    ("ARC-EV-01", "connected recently", facts(), context(), "pass", None),
    ("ARC-EV-01", "offline", facts(cluster_row(connectivityStatus="Offline")), context(), "fail", None),
    ("ARC-EV-01", "expired", facts(cluster_row(connectivityStatus="Expired")), context(), "fail", None),
    (
        "ARC-EV-01",
        "connected but silent for days",
        facts(cluster_row(lastConnectivityTime="2026-11-20T00:00:00Z")),
        context(),
        "fail",
        None,
    ),
    ("ARC-EV-01", "connecting", facts(cluster_row(connectivityStatus="Connecting")), context(), "unknown", Reason.IN_PROGRESS),
    ("ARC-EV-01", "status missing", facts(cluster_row(connectivityStatus="")), context(), "unknown", Reason.DATA_MISSING),
    ("ARC-DEF-01", "sensor installed", facts(extensions=[extension("microsoft.azuredefender.kubernetes")]), context(), "pass", None),
    ("ARC-DEF-01", "sensor missing", facts(), context(), "fail", None),
    (
        "ARC-DEF-01",
        "sensor Canceled",
        facts(extensions=[extension("microsoft.azuredefender.kubernetes", "Canceled")]),
        context(),
        "fail",
        None,
    ),
    (
        "ARC-DEF-01",
        "sensor Updating",
        facts(extensions=[extension("Microsoft.AzureDefender.Kubernetes", "Updating", casing="camel")]),
        context(),
        "unknown",
        Reason.IN_PROGRESS,
    ),
]


@pytest.mark.parametrize("control,case,fact,ctx,expected,reason", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_control_verdicts(control, case, fact, ctx, expected, reason) -> None:
    verdict = evaluate_cluster(fact, cluster_info(fact), ctx)[control]
    assert verdict.status == expected, verdict.detail
    if reason:
        assert verdict.reason == reason
    assert verdict.detail


def test_every_control_has_pass_fail_and_unknown_cases() -> None:
    from posture.catalog.controls import CONTROLS

    seen = {(c[0], c[4]) for c in CASES}
    for control in CONTROLS:
        expected = ["unknown"] if control.source == "attestation" else ["pass", "fail", "unknown"]
        if control.semantics["not_applicable"] != "Never.":
            expected.append("not_applicable")
        for status in expected:
            assert (control.id, status) in seen, (control.id, status)


def test_a_stale_cluster_never_passes_but_keeps_its_failures() -> None:
    fact = facts(cluster_row(connectivityStatus="Offline", **PL), extensions=POLICY_OK)
    verdicts = evaluate_cluster(fact, cluster_info(fact), context(scope_row(access="Enabled")))
    assert verdicts["ARC-PL-01"].status == Status.UNKNOWN and verdicts["ARC-PL-01"].reason == Reason.STALE
    assert verdicts["ARC-NP-03"].status == Status.UNKNOWN and verdicts["ARC-NP-03"].raw_status == Status.UNKNOWN
    assert verdicts["ARC-PL-02"].status == Status.FAIL
    assert not any(v.status == Status.PASS for v in verdicts.values())
