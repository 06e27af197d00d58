"""Benchmarks (framework → section → control counts, drill-down) and controls (fleet results,
affected clusters, remediation for the whole failing set)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from posture.evaluate.scoring import SECTION_CONTROLS, section_status
from posture.models import Cluster, ControlResult, FleetSnapshot
from tests.conftest import logged_in
from tests.web.conftest import SUB, SUB2

ROW_RE = re.compile(r'<td class="truncate"><a href="/clusters/(\d+)/')


def section_members(framework: str, section: str, status: str) -> set[int]:
    """Clusters whose fail-dominant status for the section is `status`, computed from results."""
    controls = SECTION_CONTROLS[(framework, section)]
    by_cluster: dict[int, list[str]] = {}
    for cluster_id, result in ControlResult.objects.filter(control__in=controls).values_list("cluster_id", "status"):
        by_cluster.setdefault(cluster_id, []).append(result)
    return {pk for pk, statuses in by_cluster.items() if section_status(statuses) == status}


@pytest.mark.django_db
def test_the_benchmark_index_lists_every_framework_with_its_kind(fleet: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("benchmark-list")).content.decode()
    for title in (
        "CIS Kubernetes Benchmark",
        "NIST SP 800-190",
        "NSA/CISA Kubernetes Hardening Guidance",
        "OWASP Kubernetes",
        "References as printed by Microsoft",
    ):
        assert title in html
    assert "as printed by Microsoft" in html and "closer fit / source" in html


@pytest.mark.django_db
def test_a_benchmark_shows_section_counts_from_the_snapshot(fleet: Any, viewer_client: Any) -> None:
    counts = FleetSnapshot.objects.latest().sections["cis-k8s"]["5.3.2"]
    html = " ".join(viewer_client.get(reverse("benchmark-detail", args=["cis-k8s"])).content.decode().split())
    row = html[html.index('href="/benchmarks/cis-k8s/5.3.2/"') :]
    row = row[: row.index("</tr>")]
    assert f'status-unknown">{counts["unknown"]}</a>' in row
    assert "No control cites this section: only Microsoft's printed reference R1-CIS names it" in html


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["fail", "unknown", "pass"])
def test_a_section_drills_down_to_its_clusters_by_status(fleet: Any, viewer_client: Any, status: str) -> None:
    url = reverse("benchmark-section", args=["nist-800-190", "4.4.2"]) + f"?status={status}&per_page=100"
    rows = {int(pk) for pk in ROW_RE.findall(viewer_client.get(url).content.decode())}
    assert rows == section_members("nist-800-190", "4.4.2", status)


@pytest.mark.django_db
def test_unknown_frameworks_and_sections_are_not_found(viewer_client: Any) -> None:
    assert viewer_client.get(reverse("benchmark-detail", args=["iso-27001"])).status_code == 404
    assert viewer_client.get(reverse("benchmark-section", args=["cis-k8s", "9.9"])).status_code == 404
    assert viewer_client.get(reverse("control-detail", args=["ARC-XX-99"])).status_code == 404


@pytest.mark.django_db
def test_the_control_list_counts_clusters_per_status(fleet: Any, viewer_client: Any) -> None:
    counts = FleetSnapshot.objects.latest().controls["ARC-PL-01"]
    html = " ".join(viewer_client.get(reverse("control-list")).content.decode().split())
    row = html[html.index('<a href="/controls/ARC-PL-01/">') :]
    row = row[: row.index("</tr>")]
    assert f'href="/controls/ARC-PL-01/?status=fail" class="status-fail">{counts["fail"]}</a>' in row
    assert f'href="/controls/ARC-PL-01/?status=pass" class="status-pass">{counts["pass"]}</a>' in row


@pytest.mark.django_db
def test_a_control_lists_its_failing_clusters_and_the_policies_that_fix_them(fleet: Any, viewer_client: Any) -> None:
    failing = set(ControlResult.objects.filter(control="ARC-PL-01", status="fail").values_list("cluster_id", flat=True))
    html = viewer_client.get(reverse("control-detail", args=["ARC-PL-01"])).content.decode()
    assert {int(pk) for pk in re.findall(r'<a href="/clusters/(\d+)/#row-ARC-PL-01">', html)} == failing
    assert "12e7176a-4919-47ef-922b-34eda4c7f0ce" in html and "Modify" in html  # built-in policy GUID and effect
    assert "Commands for the clusters on this page" in html and "az connectedk8s connect" in html
    assert "Analysts can download" in html
    passing = viewer_client.get(reverse("control-detail", args=["ARC-PL-01"]) + "?status=pass").content.decode()
    assert "Commands for the clusters on this page" not in passing


@pytest.mark.django_db
def test_the_page_commands_say_which_change_azure_and_which_only_read(fleet: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("control-detail", args=["ARC-NP-04"])).content.decode()  # every cluster fails it
    assert "# Changes Azure resources:\naz policy assignment create --name arc-allowed-ports" in html
    assert "# Only reads, changes nothing:\naz policy state list --resource" in html


@pytest.mark.django_db
def test_a_control_page_cites_the_owasp_cheat_sheet_by_title_and_year_once(fleet: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("control-detail", args=["ARC-NP-03"])).content.decode()
    assert (
        "OWASP Kubernetes Security Cheat Sheet 2025 \u00a7 Section 4: Deploy Phase \u203a Implementing centralized policy management"
        in html
    )
    assert "Cheat Sheet Cheat Sheet" not in html


@pytest.mark.django_db
def test_the_remediation_script_covers_every_failing_cluster(fleet: Any, analyst: Any) -> None:
    response = logged_in(analyst).get(reverse("control-remediation", args=["ARC-PL-01"]))
    assert response["Content-Type"].startswith("text/x-shellscript")
    assert 'filename="remediate-arc-pl-01.sh"' in response["Content-Disposition"]
    script = b"".join(response.streaming_content).decode()
    failing = Cluster.objects.filter(results__control="ARC-PL-01", results__status="fail")
    assert script.startswith("#!/bin/sh\n") and f"# {failing.count()} failing cluster(s)." in script
    for cluster in failing:
        assert f"-n {cluster.name} --subscription {cluster.subscription_id}" in script
    assert f"--policy 12e7176a-4919-47ef-922b-34eda4c7f0ce --scope /subscriptions/{SUB}" in script


@pytest.mark.django_db
def test_subscription_wide_commands_appear_once_in_the_script(fleet: Any, analyst: Any) -> None:
    # No guardrail is assigned anywhere: every cluster fails ARC-NP-04.
    script = b"".join(logged_in(analyst).get(reverse("control-remediation", args=["ARC-NP-04"])).streaming_content).decode()
    assign = "az policy assignment create --name arc-allowed-ports --policy 233a2a17-77ca-4fb1-9b6b-69223d272a44 --scope /subscriptions/"
    assert script.count(assign + SUB + "\n") == 1 and script.count(assign + SUB2 + "\n") == 1
    assert script.count("az policy state list --resource") == len(fleet.clusters)  # per-cluster commands stay


@pytest.mark.django_db
def test_the_script_fills_each_clusters_private_link_scope(fleet: Any, analyst: Any) -> None:
    cluster = fleet.clusters[1]
    scope_id = "/subscriptions/x/resourceGroups/net/providers/Microsoft.HybridCompute/privateLinkScopes/pls one"
    Cluster.objects.filter(pk=cluster.pk).update(facts={**cluster.facts, "private_link_scope_id": scope_id})
    ControlResult.objects.filter(cluster=cluster, control="ARC-PL-02").update(status="fail")
    script = b"".join(logged_in(analyst).get(reverse("control-remediation", args=["ARC-PL-02"])).streaming_content).decode()
    assert f"az resource update --ids '{scope_id}' --set properties.publicNetworkAccess=Disabled" in script
