"""The cluster page lists the raw Azure responses that hold the cluster: its own batch's, and of a
query run in slices, only the slice with the cluster's subscription."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from posture.models import QueryEvidence, ScanBatch
from tests.conftest import logged_in
from tests.web.conftest import SUB, SUB2, Fleet

OTHER = "33333333-3333-3333-3333-333333333333"


def evidence(batch: ScanBatch, name: str, scopes: dict[str, Any]) -> QueryEvidence:
    body = f'{{"data": [], "query": "{name}"}}\n'.encode()
    now = timezone.now()
    return QueryEvidence.objects.create(
        batch=batch,
        name=name,
        request="arcResources",
        api_version="2022-10-01",
        scopes=scopes,
        started_at=now,
        finished_at=now,
        requests=1,
        sha256=hashlib.sha256(body).hexdigest(),
        raw=gzip.compress(body),
    )


@pytest.mark.django_db
def test_the_page_lists_the_evidence_holding_the_cluster(make_fleet: Callable[..., Fleet], analyst: Any, viewer: Any) -> None:
    fleet = make_fleet(1)
    cluster = fleet.clusters[0]
    assert cluster.subscription_id == SUB
    batch = ScanBatch.objects.get(scan=fleet.scan)
    shown = [
        *QueryEvidence.objects.filter(batch=batch),  # the fixture's query, run over the whole batch
        evidence(batch, "slice-with-it", {"subscriptions": [SUB2, SUB]}),
    ]
    hidden = [
        evidence(batch, "slice-without-it", {"subscriptions": [SUB2]}),
        # Another batch of the same scan, whose subscriptions do not include the cluster's.
        evidence(ScanBatch.objects.create(scan=fleet.scan, number=2, subscriptions=[OTHER], state=ScanBatch.State.DONE), "other-batch", {}),
        # A batch that failed: its responses are not what the cluster's facts came from.
        evidence(ScanBatch.objects.create(scan=fleet.scan, number=3, subscriptions=[SUB], state=ScanBatch.State.FAILED), "failed", {}),
    ]
    url = reverse("cluster-detail", args=[cluster.pk])
    html = logged_in(analyst).get(url).content.decode()
    for row in shown:
        assert row.sha256 in html and reverse("evidence-download", args=[row.pk]) in html, row.name
    for row in hidden:
        assert row.sha256 not in html, row.name
    viewer_html = logged_in(viewer).get(url).content.decode()
    assert shown[1].sha256 in viewer_html and reverse("evidence-download", args=[shown[1].pk]) not in viewer_html
