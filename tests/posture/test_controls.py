"""Every control over pass, fail, unknown and not applicable, from ARG-shaped rows.

Rows go through the same normalization as a scan, so casing quirks (PascalCase extension
properties, mixed-case ids) are exercised end to end.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from posture import normalize
from posture.evaluate.context import Context
from posture.evaluate.rules import evaluate_cluster
from posture.models.results import Reason, Status

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SUB = "11111111-1111-1111-1111-111111111111"
HUB = "22222222-2222-2222-2222-222222222222"
RG = f"/subscriptions/{SUB}/resourceGroups/Edge"
CLUSTER = f"{RG}/providers/Microsoft.Kubernetes/connectedClusters/Store-7"
SCOPE_ID = f"{RG}/providers/Microsoft.HybridCompute/privateLinkScopes/pls-east"
SCOPE_ROW_ID = f"{RG}/providers/microsoft.hybridcompute/privateLinkScopes/pls-east"  # ARG's casing quirk
PE_ID = f"/subscriptions/{HUB}/resourceGroups/hub/providers/Microsoft.Network/privateEndpoints/pe-arc"
GATEWAY_ID = f"{RG}/providers/Microsoft.HybridCompute/gateways/gw1"
LNET = f"{RG}/providers/Microsoft.AzureStackHCI/logicalNetworks/lnet-aks"
VAULT_ID = f"{RG}/providers/Microsoft.KeyVault/vaults/kv1"


def cluster_row(**overrides):
    row = {
        "id": CLUSTER,
        "name": "Store-7",
        "location": "eastus",
        "subscriptionId": SUB,
        "resourceGroup": "edge",
        "kind": None,
        "tags": {},
        "connectivityStatus": "Connected",
        "lastConnectivityTime": "2026-11-26T11:00:00Z",
        "privateLinkState": "Disabled",
        "privateLinkScopeResourceId": "",
        "gatewayEnabled": None,
        "gatewayResourceId": "",
        "workloadIdentityEnabled": True,
        "oidcIssuerEnabled": True,
    }
    row.update(overrides)
    return row


def extension(ext_type, state="Succeeded", casing="pascal", name=None):
    keys = ("ExtensionType", "ProvisioningState") if casing == "pascal" else ("extensionType", "provisioningState")
    # ARG's query coalesces both casings into these columns; the id casing varies by table.
    return {
        "id": CLUSTER.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
        + f"/providers/Microsoft.KubernetesConfiguration/extensions/{name or ext_type}",
        "name": name or ext_type,
        "extensionType": ext_type if casing == "pascal" else ext_type.upper(),
        "provisioningState": state,
        "_keys": keys,
    }


def facts(row=None, extensions=(), policy_states=(), instance=False):
    record = normalize.cluster_record(row or cluster_row())
    for ext in extensions:
        _owner, item = normalize.extension_record({k: v for k, v in ext.items() if k != "_keys"})
        record["extensions"].append(item)
    for definition, state in policy_states:
        record["policy_states"].append({"definition": definition, "state": state, "assignment": "a", "timestamp": None})
    if instance is not False:
        record["provisioned_instance"] = normalize.provisioned_instance_record(instance)
    return normalize.finish(record)


def resource(row):
    return normalize.resource_record(row)


def scope_row(access="Disabled", location="eastus", status="Approved"):
    return {
        "id": SCOPE_ROW_ID,
        "type": "microsoft.hybridcompute/privatelinkscopes",
        "name": "pls-east",
        "location": location,
        "subscriptionId": SUB,
        "publicNetworkAccess": access,
        "privateEndpointConnections": [
            {"properties": {"privateEndpoint": {"id": PE_ID}, "privateLinkServiceConnectionState": {"status": status}}}
        ],
    }


def endpoint_row(location="eastus", group="hybridcompute"):
    return {
        "id": PE_ID,
        "type": "microsoft.network/privateendpoints",
        "name": "pe-arc",
        "location": location,
        "subscriptionId": HUB,
        "privateLinkServiceConnections": [
            {
                "properties": {
                    "privateLinkServiceId": SCOPE_ID,
                    "groupIds": [group],
                    "privateLinkServiceConnectionState": {"status": "Approved"},
                }
            }
        ],
    }


def context(*rows, lnet_users=None, attestations=None, exceptions=None):
    ctx = Context(now=NOW, stale_after=dt.timedelta(hours=24))
    for row in rows:
        record = resource(row)
        ctx.resources[record["id"].lower()] = record
        if record["type"] == "microsoft.keyvault/vaults":
            ctx.vaults_by_subscription.setdefault(record["subscription_id"], []).append(record)
    ctx.logical_network_users = lnet_users or {}
    ctx.attestations = attestations or {}
    ctx.exceptions = exceptions or {}
    return ctx


def instance(policy="calico", subnets=(LNET,)):
    return {
        "properties": {
            "networkProfile": {"networkPolicy": policy},
            "cloudProviderProfile": {"infraNetworkProfile": {"vnetSubnetIds": list(subnets)}},
        }
    }


AKS = {"kind": "ProvisionedCluster"}
PL = {"privateLinkState": "Enabled", "privateLinkScopeResourceId": SCOPE_ID}
GW_NEW = {"gatewayEnabled": True}
GW_OLD = {"gatewayEnabled": True, "gatewayResourceId": GATEWAY_ID}
LNET_ROW = {
    "id": LNET,
    "type": "microsoft.azurestackhci/logicalnetworks",
    "name": "lnet-aks",
    "location": "eastus",
    "subscriptionId": SUB,
    "subnets": [{"name": "s", "properties": {"vlan": 10, "ipConfigurationReferences": []}}],
}
GUARDRAIL = "233a2a17-77ca-4fb1-9b6b-69223d272a44"
POLICY_OK = [extension("microsoft.policyinsights")]

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


def cluster_info(f):
    return {"pk": 1, "subscription_id": f["subscription_id"], "resource_group": f["resource_group"], "tags": f["tags"]}


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


def decision(pk, expires, **target):
    fields = {"cluster_id": None, "subscription_id": "", "resource_group": "", "tag_key": "", "tag_value": ""}
    fields.update(target)
    from posture.models import Attestation, RiskException

    obj = Attestation(pk=pk, control="", statement="verified by kubectl get networkpolicy -A", expires_at=expires, **fields)
    exc = RiskException(pk=pk, control="", justification="legacy", owner="platform team", expires_at=expires, state="approved", **fields)
    return SimpleNamespace(attestation=obj, exception=exc)


@pytest.mark.parametrize(
    "target,applies",
    [
        ({"cluster_id": 1}, True),
        ({"cluster_id": 2}, False),
        ({"subscription_id": SUB}, True),
        ({"subscription_id": SUB, "resource_group": "EDGE"}, True),
        ({"subscription_id": SUB, "resource_group": "other"}, False),
        ({"subscription_id": HUB}, False),
        ({"tag_key": "env", "tag_value": "prod"}, True),
        ({"tag_key": "env"}, True),
        ({"tag_key": "env", "tag_value": "dev"}, False),
    ],
)
def test_attestations_cover_their_targets(target, applies) -> None:
    fact = facts(cluster_row(tags={"env": "prod"}))
    att = decision(7, NOW + dt.timedelta(days=30), **target).attestation
    verdict = evaluate_cluster(fact, cluster_info(fact), context(attestations={"ARC-NP-02": [att]}))["ARC-NP-02"]
    assert verdict.status == (Status.ATTESTED if applies else Status.UNKNOWN)
    assert verdict.raw_status == Status.UNKNOWN
    assert (verdict.attestation_id == 7) is applies


def test_an_attestation_never_overrides_a_failure() -> None:
    fact = facts(cluster_row(**AKS), instance=instance("flannel"))
    att = decision(3, NOW + dt.timedelta(days=30), cluster_id=1).attestation
    verdict = evaluate_cluster(fact, cluster_info(fact), context(attestations={"ARC-NP-01": [att]}))["ARC-NP-01"]
    assert verdict.status == Status.FAIL and "contradicts" in verdict.detail


def test_exceptions_except_failures_and_unknowns_but_not_passes() -> None:
    fact = facts()  # direct path: PL-01 fails; NP-02 unknown; ID-01 passes
    exc = decision(9, NOW + dt.timedelta(days=30), subscription_id=SUB).exception
    ctx = context(exceptions={"ARC-PL-01": [exc], "ARC-NP-02": [exc], "ARC-ID-01": [exc]})
    verdicts = evaluate_cluster(fact, cluster_info(fact), ctx)
    assert verdicts["ARC-PL-01"].status == Status.EXCEPTED and verdicts["ARC-PL-01"].raw_status == Status.FAIL
    assert verdicts["ARC-NP-02"].status == Status.EXCEPTED and verdicts["ARC-NP-02"].exception_id == 9
    assert verdicts["ARC-ID-01"].status == Status.PASS


@pytest.mark.django_db
def test_expired_and_revoked_decisions_are_not_loaded(django_user_model) -> None:
    from posture.evaluate.context import build_context
    from posture.models import Attestation, RiskException

    def make(model, **kw):
        base = {"control": "ARC-NP-02", "subscription_id": SUB}
        if model is Attestation:
            base["statement"] = "x"
        else:
            base.update(justification="x", owner="o")
        return model.objects.create(**base, **kw)

    live_att = make(Attestation, expires_at=NOW + dt.timedelta(days=1))
    make(Attestation, expires_at=NOW - dt.timedelta(seconds=1))
    make(Attestation, expires_at=NOW + dt.timedelta(days=1), revoked_at=NOW)
    live_exc = make(RiskException, expires_at=NOW + dt.timedelta(days=1), state="approved")
    make(RiskException, expires_at=NOW + dt.timedelta(days=1), state="requested")
    make(RiskException, expires_at=NOW - dt.timedelta(days=1), state="approved")
    ctx = build_context(NOW)
    assert [a.pk for a in ctx.attestations["ARC-NP-02"]] == [live_att.pk]
    assert [e.pk for e in ctx.exceptions["ARC-NP-02"]] == [live_exc.pk]


@pytest.mark.django_db
def test_the_newest_covering_attestation_is_cited() -> None:
    from posture.evaluate.context import build_context
    from posture.models import Attestation

    older = Attestation.objects.create(
        control="ARC-NP-02",
        subscription_id=SUB,
        statement="old",
        expires_at=NOW + dt.timedelta(days=5),
        created_at=NOW - dt.timedelta(days=9),
    )
    newer = Attestation.objects.create(
        control="ARC-NP-02", subscription_id=SUB, statement="renewed", expires_at=NOW + dt.timedelta(days=90), created_at=NOW
    )
    Attestation.objects.create(control="ARC-NP-02", subscription_id=HUB, statement="elsewhere", expires_at=NOW + dt.timedelta(days=90))
    fact = facts()
    verdict = evaluate_cluster(fact, cluster_info(fact), build_context(NOW))["ARC-NP-02"]
    assert verdict.status == Status.ATTESTED and verdict.attestation_id == newer.pk != older.pk
