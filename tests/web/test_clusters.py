"""The cluster list (filters, sorting, pagination in the query string) and the cluster detail."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from posture import governance
from posture.models import Cluster, ControlResult, Scan
from posture.scans.evaluation import evaluate_scope
from tests.conftest import logged_in
from tests.web.conftest import SUB, SUB2, add_cluster

LINK_RE = re.compile(r'<td class="name-cell"><div class="line"><a class="clip" href="/clusters/(\d+)/"')


def listed(client: Any, query: str = "") -> list[int]:
    """Cluster ids in the list's rows, in order."""
    response = client.get(reverse("cluster-list") + query)
    assert response.status_code == 200
    return [int(pk) for pk in LINK_RE.findall(response.content.decode())]


def ids(**filters: Any) -> set[int]:
    return set(Cluster.objects.filter(**filters).values_list("pk", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query,expected",
    [
        ("?connectivity=Offline", {"connectivity_status": "Offline"}),
        ("?network_path=private_link", {"network_path": "private_link"}),
        ("?location=westeurope", {"location": "westeurope"}),
        ("?distribution=k3s", {"distribution": "k3s"}),
        ("?infrastructure=azure_stack_hci", {"infrastructure": "azure_stack_hci"}),
        (f"?subscription={SUB2.upper()}", {"subscription_id": SUB2}),
        ("?resource_group=RG-1", {"resource_group": "rg-1"}),
        ("?tag=team", {"tags__has_key": "team"}),
        ("?tag=env%3Dprod", {"tags__env": "prod"}),
        ("?q=C003", {"name": "c003"}),
        ("?grade=F", {"grade": "F"}),
        ("?scope=corp", {"scope__name": "corp"}),
    ],
)
def test_each_filter_narrows_the_rows(fleet: Any, viewer_client: Any, query: str, expected: dict[str, Any]) -> None:
    everything = set(listed(viewer_client))
    rows = set(listed(viewer_client, query))
    assert rows == ids(**expected)
    assert rows and (rows < everything or query in ("?grade=F", "?scope=corp", "?tag=team"))


@pytest.mark.django_db
def test_the_failing_control_filter_lists_clusters_failing_it(fleet: Any, viewer_client: Any) -> None:
    failing = set(ControlResult.objects.filter(control="ARC-PL-01", status="fail").values_list("cluster_id", flat=True))
    assert 0 < len(failing) < len(fleet.clusters)
    assert set(listed(viewer_client, "?control=ARC-PL-01")) == failing


@pytest.mark.django_db
def test_filters_combine_and_stay_in_the_pagination_links(make_fleet: Callable[..., Any], viewer: Any) -> None:
    make_fleet(40)
    client = logged_in(viewer)
    query = "?location=eastus&per_page=25&sort=-name"
    first = listed(client, query)
    html = client.get(reverse("cluster-list") + query).content.decode()
    assert len(first) == 20 and "Page" not in html  # 20 in eastus fit on one page
    everything = listed(client, "?per_page=25")
    assert len(everything) == 25
    page2 = client.get(reverse("cluster-list") + "?per_page=25&location=&page=2").content.decode()
    assert "Page 2 of 2" in page2 and "?per_page=25&amp;location=&amp;page=1" in page2
    assert len(LINK_RE.findall(page2)) == 15


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["name", "-name", "score", "-score", "failing", "-failing", "coverage", "-last_connectivity_at"])
def test_sorting_orders_the_rows(fleet: Any, viewer_client: Any, sort: str) -> None:
    field = sort.lstrip("-")
    rows = listed(viewer_client, f"?sort={sort}")
    values = {c.pk: getattr(c, field) for c in Cluster.objects.all()}
    keyed = [(values[pk] is None, values[pk]) for pk in rows]
    present = [v for missing, v in keyed if not missing]
    assert present == sorted(present, reverse=sort.startswith("-"))
    assert keyed == sorted(keyed, key=lambda k: k[0])  # clusters without a value come last


@pytest.mark.django_db
def test_removed_clusters_are_hidden_unless_asked_for(fleet: Any, viewer_client: Any) -> None:
    gone = fleet.clusters[2]
    Cluster.objects.filter(pk=gone.pk).update(removed_at=timezone.now())
    assert gone.pk not in listed(viewer_client)
    assert gone.pk in listed(viewer_client, "?removed=on")


@pytest.mark.django_db
def test_an_invalid_filter_is_reported_and_ignored(fleet: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("cluster-list") + "?grade=Z&connectivity=Offline").content.decode()
    assert "Some filters were ignored" in html and "Grade: Select a valid choice" in html
    assert set(LINK_RE.findall(html)) == {str(pk) for pk in ids(connectivity_status="Offline")}


@pytest.mark.django_db
def test_no_match_says_so_and_offers_to_clear(fleet: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("cluster-list") + "?q=does-not-exist").content.decode()
    assert "No cluster matches" in html and "Clear the filters" in html


@pytest.mark.django_db
def test_filter_options_follow_the_latest_evaluation(fleet: Any, viewer_client: Any) -> None:
    assert '<option value="brazilsouth">' not in viewer_client.get(reverse("cluster-list")).content.decode()
    add_cluster(fleet.scope, fleet.scan, 90, location="brazilsouth")
    evaluate_scope(fleet.scope.pk, scan=fleet.scan)
    assert '<option value="brazilsouth">' in viewer_client.get(reverse("cluster-list")).content.decode()


@pytest.mark.django_db
def test_the_detail_shows_every_control_with_status_reason_and_evidence(fleet: Any, analyst_client: Any, viewer_client: Any) -> None:
    cluster = fleet.clusters[1]  # Disabled Private Link: ARC-PL-01 fails
    html = analyst_client.get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    assert html.count('<tr id="row-ARC-') == 15
    row = html[html.index('<tr id="row-ARC-PL-01"') : html.index('<tr id="row-ARC-PL-02"')]
    assert "status-fail" in row and "Evidenced by Azure data" in row
    assert "<dt>private_link_state</dt>" in row and "Disabled" in row
    assert "Request exception" in row and "Attest<" not in row  # a fail cannot be attested away
    np02 = html[html.index('<tr id="row-ARC-NP-02"') : html.index('<tr id="row-ARC-NP-03"')]
    assert "Not visible in Azure Resource Graph" in np02
    assert f"/attestations/new/?control=ARC-NP-02&amp;cluster={cluster.pk}" in np02  # unknown: attest it
    viewer_html = viewer_client.get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    assert "Request exception" not in viewer_html and "/attestations/new/" not in viewer_html


@pytest.mark.django_db
def test_the_detail_fills_remediation_commands_and_splits_references(fleet: Any, viewer_client: Any) -> None:
    cluster = fleet.clusters[1]
    html = viewer_client.get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    assert f"az connectedk8s connect -g rg-1 -n c001 --subscription {SUB} -l westeurope" in html
    assert "--query &quot;{status: connectivityStatus, last: lastConnectivityTime}&quot;" in html  # JMESPath braces kept
    assert "As printed by Microsoft" in html and "Closer fit (Arc Posture mapping)" in html
    assert "CIS Kubernetes Benchmark 1.10 § 5.3.1 Ensure that the CNI in use supports Network Policies" in html
    assert "CIS Kubernetes Benchmark - Sections 1, 2, and 4" in html


@pytest.mark.django_db
def test_the_detail_marks_each_command_as_changing_azure_or_only_reading(fleet: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("cluster-detail", args=[fleet.clusters[1].pk])).content.decode()
    assert "# Changes Azure resources:\naz connectedk8s connect -g rg-1 -n c001" in html
    assert "# Only reads, changes nothing:\naz aksarc show -g rg-1 -n c001" in html


@pytest.mark.django_db
def test_the_detail_shows_history_governance_and_raw_evidence(fleet: Any, viewer_client: Any, analyst: Any) -> None:
    cluster = fleet.clusters[0]  # its workload identity changed between the two evaluations
    governance.attestation_create(
        user=analyst, control="ARC-NP-02", subscription_id=SUB, statement="default deny", expires_at=timezone.now() + dt.timedelta(days=9)
    )
    html = viewer_client.get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    history = html[html.index('id="changes-heading"') : html.index('id="score-heading"')]
    assert "ARC-ID-01" in history and "status-fail" in history and "status-pass" in history
    assert "subscription 11111111-1111-1111-1111-111111111111" in html  # the attestation's target
    assert "clusters" in html and "SHA-256" in html and "analysts can download" in html
    assert "&quot;workload_identity_enabled&quot;: true" in html  # the raw facts JSON
    analyst_html = logged_in(analyst).get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    assert "/raw.jsonl.gz" in analyst_html


@pytest.mark.django_db
def test_the_detail_warns_when_the_latest_scan_did_not_refresh_the_cluster(fleet: Any, viewer_client: Any) -> None:
    cluster = fleet.clusters[0]
    url = reverse("cluster-detail", args=[cluster.pk])
    assert "did not refresh this cluster" not in viewer_client.get(url).content.decode()
    Scan.objects.create(scope=fleet.scope, state=Scan.State.PARTIAL, finished_at=timezone.now())
    html = viewer_client.get(url).content.decode()
    assert "did not refresh this cluster" in html and "partial" in html


@pytest.mark.django_db
def test_an_unknown_cluster_is_not_found(viewer_client: Any) -> None:
    response = viewer_client.get(reverse("cluster-detail", args=[424242]))
    assert response.status_code == 404 and b"Not found" in response.content
