"""/metrics: a bearer token guards it, its output parses, and its posture gauges are the
overview page's numbers for the same fleet."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from posture.catalog.controls import CONTROLS_BY_ID
from posture.models import Export, Scan, Scope, Status
from posture.read.fleet import FRESHNESS_CONTROL
from tests.web.conftest import Fleet, sample_notification
from web.metrics.collector import celery_queues
from web.metrics.views import CACHE_KEY

TOKEN = "m" * 40
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def metrics_on(settings: Any) -> Iterator[None]:
    settings.ARC_METRICS_TOKEN = TOKEN
    settings.ARC_METRICS_CACHE_SECONDS = 0
    # The pages cache may be Redis, shared with earlier tests: start without a cached collection.
    caches["pages"].delete(CACHE_KEY)
    yield
    caches["pages"].delete(CACHE_KEY)


def scrape(token: str = TOKEN, **headers: str) -> Any:
    return Client().get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def samples() -> Samples:
    """Every sample of a scrape, by (name, sorted labels); the text must parse."""
    response = scrape()
    assert response.status_code == 200, response.content
    text = response.content.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def labelled(found: Samples, name: str, **labels: str) -> float | None:
    return found.get(("arc_posture_" + name, tuple(sorted(labels.items()))))


def test_without_the_token_it_answers_401_with_a_bearer_challenge(db: Any) -> None:
    response = Client().get(reverse("metrics"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="arc-posture-metrics"'
    assert b"Authorization: Bearer" in response.content


def test_a_wrong_token_is_refused_and_never_echoed_or_logged(db: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "w" * 40
    for answer in (
        scrape(wrong),
        scrape(TOKEN + "x"),
        scrape(TOKEN[:-1]),
        Client().get(reverse("metrics"), HTTP_AUTHORIZATION=f"Basic {TOKEN}"),
    ):
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer["WWW-Authenticate"]
        assert wrong.encode() not in answer.content and TOKEN.encode() not in answer.content
    # A header of non-ASCII bytes is a wrong token, not a server error.
    assert scrape("jeton-été").status_code == 401
    assert wrong not in caplog.text and TOKEN not in caplog.text


def test_without_a_configured_token_metrics_are_switched_off(db: Any, settings: Any) -> None:
    settings.ARC_METRICS_TOKEN = ""
    response = scrape("")
    assert response.status_code == 401 and b"no ARC_METRICS_TOKEN is configured" in response.content


def test_only_get_and_head_are_answered(db: Any) -> None:
    assert Client().post(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert Client().head(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_every_family_is_prefixed_and_explained(make_fleet: Callable[..., Fleet]) -> None:
    make_fleet(3)
    text = scrape().content.decode()
    families = list(text_string_to_metric_families(text))
    assert len(families) >= 20
    for family in families:
        assert family.name.startswith("arc_posture_") and family.documentation, family.name
    # The global registry's process and Python metrics are not ours to export.
    assert "process_cpu_seconds_total" not in text and "python_gc" not in text


def test_posture_gauges_match_the_overview_page(make_fleet: Callable[..., Fleet], viewer_client: Client) -> None:
    make_fleet(4, name="small")
    make_fleet(9, name="large")
    found = samples()
    pages = {None: viewer_client.get(reverse("overview")).context}
    pages.update({name: viewer_client.get(reverse("overview") + f"?scope={name}").context for name in ("small", "large")})

    whole = pages[None]["summary"]
    assert labelled(found, "fleet_score") == whole.score
    assert labelled(found, "fleet_coverage_percent") == whole.coverage
    assert labelled(found, "fleet_clusters") == whole.clusters == 13
    for name in ("small", "large"):
        page = pages[name]
        summary = page["summary"]
        assert labelled(found, "scope_score", scope=name) == summary.score
        assert labelled(found, "scope_coverage_percent", scope=name) == summary.coverage
        assert labelled(found, "scope_clusters", scope=name) == summary.clusters
        assert labelled(found, "stale_clusters", scope=name) == page["stale_count"]
        # The overview's grade bars and the scope's grade gauges, bar by bar.
        for row in page["grade_rows"]:
            grade = row["label"] if row["label"] != "No grade" else "-"
            assert labelled(found, "clusters_by_grade", scope=name, grade=grade) == row["count"], grade
        for control, counts in summary.controls.items():
            rows = _failing(found, name, control) if control in CONTROLS_BY_ID else []
            assert [value for _, value in rows] == ([counts.get(Status.FAIL, 0)] if control in CONTROLS_BY_ID else []), control
    # Summed over scopes, the gauges give the whole fleet's overview.
    assert sum(v for (n, _), v in found.items() if n == "arc_posture_stale_clusters") == pages[None]["stale_count"] > 0
    for row in pages[None]["top_failing"]:
        assert sum(v for _, v in _failing(found, None, row["control"].id)) == row["fail"]
    offline = sum(v for (n, labels), v in found.items() if n == "arc_posture_clusters_by_connectivity" and ("status", "Offline") in labels)
    assert offline == whole.connectivity["Offline"]


def _failing(found: Samples, scope: str | None, control: str) -> list[tuple[tuple[str, Any], float]]:
    return [
        ((name, labels), value)
        for (name, labels), value in found.items()
        if name == "arc_posture_failing_clusters" and ("control", control) in labels and (scope is None or ("scope", scope) in labels)
    ]


def test_failing_clusters_carry_the_controls_severity(make_fleet: Callable[..., Fleet]) -> None:
    make_fleet(5)
    found = samples()
    freshness = _failing(found, "corp", FRESHNESS_CONTROL)
    assert len(freshness) == 1 and dict(freshness[0][0][1])["severity"] in ("low", "medium", "high", "critical")


def test_last_scan_state_duration_and_azure_traffic(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(3)
    Scan.objects.filter(pk=fleet.scan.pk).update(throttled=2, quota_wait_seconds=4.5)
    found = samples()
    assert labelled(found, "last_scan_state", scope="corp", state="succeeded") == 1
    assert labelled(found, "last_scan_state", scope="corp", state="running") == 0
    assert labelled(found, "last_scan_duration_seconds", scope="corp") == pytest.approx(120)  # finished_scan: two minutes
    assert labelled(found, "last_scan_azure_requests", scope="corp") == 7
    assert labelled(found, "last_scan_throttled_requests", scope="corp") == 2
    assert labelled(found, "last_scan_quota_wait_seconds", scope="corp") == 4.5
    assert 0 <= labelled(found, "last_scan_age_seconds", scope="corp") < 120  # type: ignore[operator]

    # A scan requested an hour ago is still running (the finished one was requested before it).
    Scan.objects.filter(pk=fleet.scan.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    running = Scan.objects.create(scope=fleet.scope, state=Scan.State.RUNNING, started_at=timezone.now())
    Scan.objects.filter(pk=running.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    found = samples()
    assert labelled(found, "last_scan_state", scope="corp", state="running") == 1
    assert labelled(found, "last_scan_duration_seconds", scope="corp") is None  # still running
    assert labelled(found, "last_scan_age_seconds", scope="corp") == pytest.approx(3600, abs=60)


def test_export_and_alert_backlogs(make_fleet: Callable[..., Fleet], viewer: Any) -> None:
    make_fleet(1)
    for state in ("pending", "pending", "running", "succeeded", "failed"):
        Export.objects.create(kind="findings", format="csv", state=state)
    for state in ("pending", "pending", "pending", "sending", "sent", "failed", "failed", "held"):
        sample_notification(None, viewer, state=state)
    found = samples()
    assert labelled(found, "export_backlog", state="pending") == 2
    assert labelled(found, "export_backlog", state="running") == 1
    assert labelled(found, "alert_backlog", state="pending") == 3
    assert labelled(found, "alert_backlog", state="sending") == 1
    assert labelled(found, "alert_backlog", state="handing_over") == 0
    assert labelled(found, "alert_notifications_failed") == 2


def test_a_hostile_scope_name_does_not_break_the_exposition(make_fleet: Callable[..., Fleet]) -> None:
    fleet = make_fleet(2)
    hostile = 'x"} arc_posture_fleet_score 0\n# HELP \\ {evil="1"}'
    Scope.objects.filter(pk=fleet.scope.pk).update(name=hostile)
    found = samples()
    assert labelled(found, "scope_clusters", scope=hostile) == 2
    assert len([k for k in found if k[0] == "arc_posture_fleet_score"]) == 1


def test_a_collection_is_served_from_the_cache_for_the_configured_seconds(make_fleet: Callable[..., Fleet], settings: Any) -> None:
    make_fleet(2)
    settings.ARC_METRICS_CACHE_SECONDS = 30
    first = scrape().content
    Export.objects.create(kind="findings", format="csv", state="pending")
    assert scrape().content == first  # within the period: the same collection
    openmetrics = scrape(HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text") and openmetrics.content.endswith(b"# EOF\n")
    caches["pages"].delete(CACHE_KEY)
    assert labelled(samples(), "export_backlog", state="pending") == 1


def test_in_process_mode_has_no_queue_depth(make_fleet: Callable[..., Fleet], settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    make_fleet(1)
    assert not [k for k in samples() if k[0].startswith("arc_posture_celery_")]


def test_queue_depth_is_read_from_redis(make_fleet: Callable[..., Fleet], settings: Any, redis_url: str) -> None:
    settings.CELERY_BROKER_URL = redis_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    make_fleet(1)
    client = redis.Redis.from_url(redis_url)
    assert celery_queues() == ["collect", "default"]
    before = {queue: client.llen(queue) for queue in celery_queues()}
    marker = f"metrics-test-{timezone.now().timestamp()}"
    client.rpush("collect", *[marker] * 3)
    try:
        found = samples()
    finally:
        client.lrem("collect", 0, marker)
    assert labelled(found, "celery_broker_up") == 1
    assert labelled(found, "celery_queue_length", queue="collect") == before["collect"] + 3
    assert labelled(found, "celery_queue_length", queue="default") == before["default"]


def test_an_unreachable_broker_is_reported_not_raised(make_fleet: Callable[..., Fleet], settings: Any, caplog: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://:secret-password@127.0.0.1:9/0"  # nothing listens on port 9
    settings.CELERY_TASK_ALWAYS_EAGER = False
    make_fleet(1)
    found = samples()
    assert labelled(found, "celery_broker_up") == 0
    assert not [k for k in found if k[0] == "arc_posture_celery_queue_length"]
    assert labelled(found, "fleet_clusters") == 1
    assert "the Celery broker did not answer" in caplog.text and "secret-password" not in caplog.text


def test_a_collection_costs_the_same_few_queries_whatever_the_fleet(
    make_fleet: Callable[..., Fleet], django_assert_max_num_queries: Any
) -> None:
    make_fleet(2, name="small")
    make_fleet(12, name="large")
    with django_assert_max_num_queries(6):
        assert scrape().status_code == 200
