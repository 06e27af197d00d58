"""What /metrics exports: a prometheus-client Collector that reads stored state on every
collection, so every web process answers the same whatever process did the work.

The posture gauges come from the overview page's own reader (posture.read.fleet.fleet_state and
summarize), so they are the numbers the overview shows. Labels are per scope, control, severity,
grade, state or queue, never per cluster: the series count does not grow with the fleet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import redis
from django.conf import settings
from django.db.models import Count
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from posture.catalog.controls import CONTROLS_BY_ID
from posture.models import Export, Notification, Scan, Status
from posture.read import fleet as read

log = logging.getLogger(__name__)

PREFIX = "arc_posture_"
# The export and alert rows still to be worked on (the backlogs); the other states are final.
EXPORT_BACKLOG_STATES = (Export.State.PENDING, Export.State.RUNNING)
ALERT_BACKLOG_STATES = (Notification.State.PENDING, Notification.State.SENDING, Notification.State.HANDING_OVER)


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))


def _posture(state: read.FleetState) -> Iterator[Metric]:
    """The overview's figures: the whole fleet, then each scope's latest evaluation."""
    fleet = state.latest
    fleet_score = _gauge("fleet_score", "Fleet score (0-100) as the overview shows it: scope scores weighted by clusters")
    fleet_coverage = _gauge(
        "fleet_coverage_percent", "Share of control checks with a definite answer across the fleet, as the overview shows it"
    )
    fleet_clusters = _gauge("fleet_clusters", "Clusters in the latest evaluation of every scope")
    if fleet.score is not None:
        fleet_score.add_metric([], fleet.score)
    if fleet.coverage is not None:
        fleet_coverage.add_metric([], fleet.coverage)
    if fleet.exists:
        fleet_clusters.add_metric([], fleet.clusters)
    yield from (fleet_score, fleet_coverage, fleet_clusters)

    score = _gauge("scope_score", "Score (0-100) of the scope's latest evaluation", ["scope"])
    coverage = _gauge("scope_coverage_percent", "Coverage of the scope's latest evaluation", ["scope"])
    clusters = _gauge("scope_clusters", "Clusters in the scope's latest evaluation", ["scope"])
    evaluated = _gauge("scope_evaluated_timestamp_seconds", "When the scope was last evaluated (Unix time)", ["scope"])
    grades = _gauge(
        "clusters_by_grade", "Clusters per grade in the scope's latest evaluation ('-': no applicable control)", ["scope", "grade"]
    )
    failing = _gauge("failing_clusters", "Clusters failing the control in the scope's latest evaluation", ["scope", "control", "severity"])
    stale = _gauge("stale_clusters", f"Stale or offline clusters: failing the freshness control {read.FRESHNESS_CONTROL}", ["scope"])
    connectivity = _gauge(
        "clusters_by_connectivity", "Clusters per Azure Arc connectivity status (Connected, Offline, Expired...)", ["scope", "status"]
    )
    names = {scope.pk: scope.name for scope in state.scopes}
    for snapshot in fleet.snapshots:
        scope = names[snapshot.scope_id]
        # One scope's summary is what the overview shows with ?scope=<name>.
        summary = read.summarize([snapshot])
        if summary.score is not None:
            score.add_metric([scope], summary.score)
        if summary.coverage is not None:
            coverage.add_metric([scope], summary.coverage)
        clusters.add_metric([scope], summary.clusters)
        if summary.created_at is not None:
            evaluated.add_metric([scope], summary.created_at.timestamp())
        for grade, n in summary.grades.items():
            grades.add_metric([scope, grade], n)
        # As the overview's top failing controls: controls the catalogue no longer has are left out.
        for control_id, counts in sorted(summary.controls.items()):
            if control_id in CONTROLS_BY_ID:
                failing.add_metric([scope, control_id, CONTROLS_BY_ID[control_id].severity], counts.get(Status.FAIL, 0))
        stale.add_metric([scope], summary.control_counts(read.FRESHNESS_CONTROL).get(Status.FAIL, 0))
        for status, n in summary.connectivity.items():
            connectivity.add_metric([scope, status], n)
    yield from (score, coverage, clusters, evaluated, grades, failing, stale, connectivity)


def _scans(state: read.FleetState, now: float) -> Iterator[Metric]:
    """Each scope's last scan: its state, age, duration and Resource Graph traffic."""
    scan_state = _gauge("last_scan_state", "1 for the state the scope's last scan is in, 0 for the others", ["scope", "state"])
    age = _gauge("last_scan_age_seconds", "Seconds since the scope's last scan was requested", ["scope"])
    finished = _gauge(
        "last_scan_finished_timestamp_seconds", "When the scope's last scan finished (Unix time); absent while it runs", ["scope"]
    )
    duration = _gauge("last_scan_duration_seconds", "How long the scope's last finished scan ran", ["scope"])
    requests = _gauge(
        "last_scan_azure_requests",
        "Azure requests of the scope's last scan: Resource Graph pages and ARM reads, retries included",
        ["scope"],
    )
    throttled = _gauge("last_scan_throttled_requests", "Requests of the scope's last scan that Azure throttled (429)", ["scope"])
    quota_wait = _gauge("last_scan_quota_wait_seconds", "Seconds the scope's last scan waited for Resource Graph quota", ["scope"])
    for scope in state.scopes:
        scan = state.last_scans.get(scope.pk)
        if scan is None:
            continue
        for value in Scan.State.values:
            scan_state.add_metric([scope.name, value], 1 if scan.state == value else 0)
        age.add_metric([scope.name], max(0.0, now - scan.created_at.timestamp()))
        if scan.finished_at is not None:
            finished.add_metric([scope.name], scan.finished_at.timestamp())
        if scan.duration is not None:
            duration.add_metric([scope.name], scan.duration.total_seconds())
        requests.add_metric([scope.name], scan.requests)
        throttled.add_metric([scope.name], scan.throttled)
        quota_wait.add_metric([scope.name], scan.quota_wait_seconds)
    yield from (scan_state, age, finished, duration, requests, throttled, quota_wait)


def _by_state(name: str, documentation: str, counts: dict[str, int], states: Iterable[str]) -> Metric:
    gauge = _gauge(name, documentation, ["state"])
    for state in states:
        gauge.add_metric([state], counts.get(state, 0))
    return gauge


def _backlogs() -> Iterator[Metric]:
    exports = dict(Export.objects.filter(state__in=EXPORT_BACKLOG_STATES).values_list("state").annotate(n=Count("pk")))
    yield _by_state("export_backlog", "Exports waiting for a worker (pending) or being built (running)", exports, EXPORT_BACKLOG_STATES)
    # Rows still to send use the partial index notification_unfinished; failed ones count in full.
    unfinished = Notification.objects.filter(state__in=ALERT_BACKLOG_STATES)
    alerts = dict(unfinished.values_list("state").annotate(n=Count("pk")))
    yield _by_state(
        "alert_backlog", "Alert messages not yet handed to the mail server (pending, sending, handing_over)", alerts, ALERT_BACKLOG_STATES
    )
    failed = _gauge("alert_notifications_failed", "Alert messages that failed for good (refused, bad address or retries exhausted)")
    failed.add_metric([], Notification.objects.filter(state=Notification.State.FAILED).count())
    yield failed


def celery_queues() -> list[str]:
    """The queues tasks go to: the default one and every routed one (web/celery.py)."""
    from web.celery import app

    routed = {route["queue"] for route in (app.conf.task_routes or {}).values() if "queue" in route}
    return sorted({app.conf.task_default_queue, *routed})


def _queue_depth() -> Iterator[Metric]:
    """Messages waiting in each Celery queue. Absent when tasks run in-process (no broker) or
    the broker is not Redis."""
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://", "unix://")):
        return
    up = _gauge("celery_broker_up", "1 when the Celery broker (Redis) answered this collection")
    depth = _gauge("celery_queue_length", "Task messages waiting in the Celery queue (Redis LLEN)", ["queue"])
    queues = celery_queues()
    try:
        # kombu keeps a Redis queue as a list under the queue's name (no task here sets a
        # message priority, which would add "<queue>\x06\x16<n>" lists); LLEN is its depth.
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        lengths = pipe.execute()
    except (redis.RedisError, OSError, ValueError):
        # The URL holds the broker's password: log the failure, never the URL.
        log.warning("metrics: the Celery broker did not answer; queue depths left out", exc_info=True)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    for queue, length in zip(queues, lengths, strict=True):
        depth.add_metric([queue], length)
    yield from (up, depth)


class PostureCollector(Collector):
    """Every family /metrics exports, read afresh on each collect() (a handful of queries)."""

    def collect(self) -> Iterable[Metric]:
        started = time.monotonic()
        state = read.fleet_state(with_scans=True)
        families = [*_posture(state), *_scans(state, time.time()), *_backlogs(), *_queue_depth()]
        took = _gauge("metrics_collect_seconds", "How long this collection took (the endpoint caches it for ARC_METRICS_CACHE_SECONDS)")
        took.add_metric([], time.monotonic() - started)
        return [*families, took]
