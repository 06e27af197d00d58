"""Pages issue a fixed number of SQL queries, whatever the fleet size (and at most 15)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from posture.models import Cluster
from posture.scans.evaluation import evaluate_scope
from tests.conftest import logged_in

MAX_QUERIES = 15


def pages(fleet: Any) -> dict[str, str]:
    cluster = Cluster.objects.filter(scope=fleet.scope).order_by("pk").first()
    assert cluster is not None
    return {
        "overview": reverse("overview"),
        "cluster list": reverse("cluster-list"),
        "cluster list, filtered": reverse("cluster-list") + "?connectivity=Connected&tag=env%3Dprod&control=ARC-PL-01&sort=-score",
        "cluster list, searched": reverse("cluster-list") + "?q=c0&grade=F&location=eastus&page=2&per_page=25",
        "cluster detail": reverse("cluster-detail", args=[cluster.pk]),
        "benchmark list": reverse("benchmark-list"),
        "benchmark": reverse("benchmark-detail", args=["cis-k8s"]),
        "benchmark section": reverse("benchmark-section", args=["nist-800-190", "4.4.2"]),
        "control list": reverse("control-list"),
        "control": reverse("control-detail", args=["ARC-PL-01"]),
        "scan list": reverse("scan-list"),
        "scan detail": reverse("scan-detail", args=[fleet.scan.pk]),
        "exceptions": reverse("exception-list"),
    }


def count_queries(client: Client, urls: dict[str, str]) -> dict[str, int]:
    counts = {}
    for name, url in urls.items():
        cache.clear()  # count the cold path: the filter options are computed, not cached
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, name
        counts[name] = len(captured.captured_queries)
    return counts


@pytest.mark.django_db
def test_page_queries_do_not_grow_with_the_fleet(make_fleet: Callable[..., Any], analyst: Any) -> None:
    client = logged_in(analyst)
    small = count_queries(client, pages(make_fleet(5, name="small")))
    Cluster.objects.all().delete()
    large = count_queries(client, pages(make_fleet(50, name="large")))
    assert small == large
    assert max(large.values()) <= MAX_QUERIES, large


@pytest.mark.django_db
def test_a_repeated_list_view_reads_no_cluster_rows_until_the_next_evaluation(make_fleet: Callable[..., Any], viewer: Any) -> None:
    fleet = make_fleet(5)
    client = logged_in(viewer)
    cache.clear()
    url = reverse("cluster-list") + "?connectivity=Connected&sort=-score"

    def cluster_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return sum('FROM "posture_cluster"' in q["sql"] for q in captured.captured_queries)

    assert cluster_queries() == 3  # filter options, count, rows
    assert cluster_queries() == 0  # all cached for this evaluation
    evaluate_scope(fleet.scope.pk)
    assert cluster_queries() == 3


def count_statements(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return sum("COUNT(" in q["sql"].upper() for q in captured.captured_queries)


@pytest.mark.django_db
def test_totals_come_from_the_snapshot_and_filtered_counts_once_per_evaluation(make_fleet: Callable[..., Any], viewer: Any) -> None:
    make_fleet(6)
    client = logged_in(viewer)
    cache.clear()
    for url in (
        reverse("cluster-list"),
        reverse("cluster-list") + "?scope=corp&sort=-score",
        reverse("control-detail", args=["ARC-PL-01"]),
        reverse("benchmark-section", args=["cis-k8s", "5.3.1"]) + "?status=unknown",
    ):
        assert count_statements(client, url) == 0, url
    filtered = reverse("cluster-list") + "?connectivity=Offline"
    assert count_statements(client, filtered) == 1
    assert count_statements(client, filtered + "&sort=-score") == 0  # same filter, already counted
