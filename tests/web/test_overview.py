"""The fleet overview answers: how is the fleet doing, what got worse, what is stale, is a scan running."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from posture.models import Cluster, FleetSnapshot, Scan, Scope
from tests.conftest import logged_in


@pytest.mark.django_db
def test_it_shows_score_grades_trend_and_top_failing_controls(fleet: Any, viewer_client: Any) -> None:
    snapshot = FleetSnapshot.objects.latest()
    html = viewer_client.get(reverse("overview")).content.decode()
    assert f"{snapshot.score:.1f}" in html and f"{snapshot.coverage:.1f}%" in html
    assert html.count('class="bar-row"') >= 7  # one bar per grade
    assert '<polyline class="score-line"' in html and '<title id="trend-title">' in html
    assert "Data table" in html  # the chart's accessible fallback
    top = max(snapshot.controls, key=lambda c: snapshot.controls[c].get("fail", 0))
    assert reverse("control-detail", args=[top]) in html
    assert "Private Link" in html and "Direct to public endpoints" in html  # network path distribution


@pytest.mark.django_db
def test_it_lists_stale_and_offline_clusters(fleet: Any, viewer_client: Any) -> None:
    offline = Cluster.objects.filter(connectivity_status="Offline").order_by("name")
    assert offline.exists()
    html = viewer_client.get(reverse("overview")).content.decode()
    for cluster in offline:
        assert reverse("cluster-detail", args=[cluster.pk]) in html
    connected = Cluster.objects.filter(connectivity_status="Connected").first()
    assert f'<a href="{reverse("cluster-detail", args=[connected.pk])}">{connected.name}</a></td><td>Connected' not in html


@pytest.mark.django_db
def test_it_reports_what_changed_since_the_previous_evaluation(fleet: Any, viewer_client: Any) -> None:
    html = " ".join(viewer_client.get(reverse("overview")).content.decode().split())
    # make_fleet turned workload identity on for c000 between its two evaluations: one fail fewer.
    assert "since the previous evaluation" in html
    assert '<td class="num status-pass">-1 better</td>' in html
    assert 'ARC-ID-01</a>: <span class="badge status-fail">Fail</span> → <span class="badge status-pass">Pass</span>' in html


@pytest.mark.django_db
def test_without_a_scope_it_explains_how_to_add_one(admin_client: Any, viewer_client: Any) -> None:
    html = viewer_client.get(reverse("overview")).content.decode()
    assert "No scope yet" in html and "python manage.py scope add" in html
    assert "Only an administrator can add scopes" in html
    assert reverse("scope-create") in admin_client.get(reverse("overview")).content.decode()


@pytest.mark.django_db
def test_before_the_first_scan_it_says_so(analyst_client: Any) -> None:
    Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    html = analyst_client.get(reverse("overview")).content.decode()
    assert "No scan yet" in html and "Scan now" in html
    assert "Fleet score" not in html


@pytest.mark.django_db
def test_a_scope_filter_narrows_the_overview(make_fleet: Callable[..., Any], viewer: Any) -> None:
    make_fleet(4, name="small")
    make_fleet(9, name="large")
    client = logged_in(viewer)
    assert ">13</a>" in client.get(reverse("overview")).content.decode()  # both scopes summed
    html = client.get(reverse("overview") + "?scope=small").content.decode()
    assert "Fleet overview: small" in html and ">4</a>" in html
    unknown = client.get(reverse("overview") + "?scope=nope").content.decode()
    assert "There is no scope of that name" in unknown and ">13</a>" in unknown


@pytest.mark.django_db
def test_a_running_scan_shows_a_live_progress_bar(fleet: Any, viewer_client: Any) -> None:
    scan = Scan.objects.create(
        scope=fleet.scope, state=Scan.State.RUNNING, started_at=timezone.now(), batches_total=4, batches_done=1, batches_failed=1
    )
    html = viewer_client.get(reverse("overview")).content.decode()
    assert f'data-progress-url="{reverse("scan-progress", args=[scan.pk])}"' in html and "data-active" in html
    assert '<progress max="1" value="0.5000"' in html
    assert "js/scan-progress.js" in html
