"""Scan history, detail, live progress JSON, "Scan now" and evidence downloads."""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from posture.models import QueryEvidence, Scan, ScanBatch, Scope
from tests.conftest import logged_in


@pytest.mark.django_db
def test_the_history_shows_state_duration_counts_quota_and_errors(fleet: Any, viewer_client: Any) -> None:
    Scan.objects.create(
        scope=fleet.scope,
        state=Scan.State.PARTIAL,
        started_at=timezone.now() - timezone.timedelta(minutes=3, seconds=5),
        finished_at=timezone.now(),
        subscriptions=1200,
        batches_total=4,
        batches_done=3,
        batches_failed=1,
        requests=4321,
        clusters=50000,
        throttled=17,
        quota_wait_seconds=42.5,
        error="1 of 4 batches failed: AuthorizationFailed",
        warnings=["2 subscription(s) holding clusters were not listed by this scan"],
    )
    html = viewer_client.get(reverse("scan-list")).content.decode()
    for text in (
        "Partial",
        "3 min 05 s",
        "1,200",
        "3 / 1 / 4",
        "4,321",
        "50,000",
        "42.5 s",
        "1 of 4 batches failed. The scanning identity may not read some of the scope&#x27;s subscriptions.",  # phrased for a viewer
        "1 warning",
        "Succeeded",
    ):
        assert text in html, text
    only_partial = viewer_client.get(reverse("scan-list") + "?state=partial").content.decode()
    assert "Partial" in only_partial and "state-succeeded" not in only_partial
    partial = Scan.objects.get(state=Scan.State.PARTIAL)
    detail = viewer_client.get(reverse("scan-detail", args=[partial.pk])).content.decode()
    assert "were not listed by this scan" in detail and "Scan again" not in detail


@pytest.mark.django_db
def test_the_detail_lists_batches_and_evidence(fleet: Any, analyst: Any, viewer_client: Any) -> None:
    url = reverse("scan-detail", args=[fleet.scan.pk])
    html = viewer_client.get(url).content.decode()
    evidence = QueryEvidence.objects.get(batch__scan=fleet.scan)
    assert "Batches" in html and evidence.sha256 in html and "arcResources" not in html
    assert reverse("evidence-download", args=[evidence.pk]) not in html  # viewers cannot download
    assert reverse("evidence-download", args=[evidence.pk]) in logged_in(analyst).get(url).content.decode()


@pytest.mark.django_db
def test_progress_json_sums_finished_and_running_batches(viewer_client: Any) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    scan = Scan.objects.create(scope=scope, state=Scan.State.RUNNING, batches_total=4, batches_done=2, requests=10, throttled=1)
    ScanBatch.objects.create(scan=scan, number=3, state=ScanBatch.State.RUNNING, requests=5, rows=700, quota_wait_seconds=2.5)
    response = viewer_client.get(reverse("scan-progress", args=[scan.pk]))
    data = response.json()
    assert response["Cache-Control"].startswith("max-age=0")
    assert data["state"] == "running" and data["finished"] is False and data["percent"] == 50
    assert (data["requests"], data["rows"], data["quota_wait_seconds"], data["batches_finished"]) == (15, 700, 2.5, 2)
    Scan.objects.filter(pk=scan.pk).update(state=Scan.State.SUCCEEDED)
    assert viewer_client.get(reverse("scan-progress", args=[scan.pk])).json()["finished"] is True


@pytest.mark.django_db
def test_scan_now_starts_a_scan_and_shows_it(analyst_client: Any, django_capture_on_commit_callbacks: Any) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = analyst_client.post(reverse("scan-start", args=[scope.name]), follow=True)
    scan = Scan.objects.get()
    assert response.redirect_chain[-1][0] == reverse("scan-detail", args=[scan.pk])
    assert "Scan of corp requested." in response.content.decode()
    assert scan.trigger == Scan.Trigger.MANUAL and scan.requested_by.username == "anna-analyst"
    assert len(callbacks) == 1
    again = analyst_client.post(reverse("scan-start", args=[scope.name]), follow=True)
    assert "already pending; showing it" in again.content.decode() and Scan.objects.count() == 1


@pytest.mark.django_db
def test_evidence_downloads_as_stored_with_its_digest(fleet: Any, analyst: Any) -> None:
    evidence = QueryEvidence.objects.get(batch__scan=fleet.scan)
    response = logged_in(analyst).get(reverse("evidence-download", args=[evidence.pk]))
    assert response["Content-Type"] == "application/gzip" and "attachment;" in response["Content-Disposition"]
    assert response["X-Content-SHA256"] == evidence.sha256
    assert hashlib.sha256(gzip.decompress(response.content)).hexdigest() == evidence.sha256


@pytest.mark.django_db
def test_an_unknown_scan_is_not_found(viewer_client: Any) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert viewer_client.get(reverse("scan-detail", args=[missing])).status_code == 404
    assert viewer_client.get(reverse("scan-progress", args=[missing])).status_code == 404
