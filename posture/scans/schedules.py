"""Beat's periodic tasks, kept in django-celery-beat's tables and derived from the scopes.

Called after every migrate and whenever a scope changes, so the database scheduler always
matches the scopes: one crontab per scope, plus the watchdog, worker heartbeats, the daily
expiry of built exports and the alert tick. A schedule beat cannot parse gets no entry (beat would only disable it
and log); the pages show it instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction

from posture import task_queue
from posture.cron import cron_problem
from posture.models import Scope

WATCHDOG = "arc-posture: watchdog"
EXPIRE_EXPORTS = "arc-posture: expire exports"
ALERT_TICK = "arc-posture: alert tick"
ALERT_TICK_SECONDS = 300
HEARTBEAT = "arc-posture: heartbeat {queue}"
SCOPE = "arc-posture: scan scope {name}"
PREFIX = "arc-posture: "
QUEUES = ("default", "collect")


def unrunnable_schedules(scopes: Iterable[Any]) -> list[tuple[Any, str]]:
    """(scope, why) for each of these scopes whose schedule beat cannot run."""
    return [(scope, problem) for scope in scopes if (problem := cron_problem(scope.schedule))]


@transaction.atomic
def sync_periodic_tasks() -> None:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    watchdog_tick, _ = IntervalSchedule.objects.get_or_create(every=settings.ARC_WATCHDOG_INTERVAL_SECONDS, period=IntervalSchedule.SECONDS)
    wanted: set[str] = set()

    def entry(name: str, task: str, **fields: Any) -> None:
        wanted.add(name)
        defaults = {"task": task, "interval": None, "crontab": None, "enabled": True, **fields}
        PeriodicTask.objects.update_or_create(name=name, defaults=defaults)

    # Expires within its tick: a backlog of watchdog messages is never worth running.
    entry(WATCHDOG, task_queue.WATCHDOG, interval=watchdog_tick, expires=None, expire_seconds=settings.ARC_WATCHDOG_INTERVAL_SECONDS)
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="17", hour="3", day_of_month="*", month_of_year="*", day_of_week="*", timezone="UTC"
    )
    entry(EXPIRE_EXPORTS, task_queue.EXPIRE_EXPORTS, crontab=daily)
    # Digests go out within five minutes of their hour; a missed tick's work waits for the next.
    alert_tick, _ = IntervalSchedule.objects.get_or_create(every=ALERT_TICK_SECONDS, period=IntervalSchedule.SECONDS)
    entry(ALERT_TICK, task_queue.ALERT_TICK, interval=alert_tick, expires=None, expire_seconds=ALERT_TICK_SECONDS)
    for queue in QUEUES:
        entry(
            HEARTBEAT.format(queue=queue),
            task_queue.WORKER_HEARTBEAT,
            interval=every_minute,
            kwargs=json.dumps({"queue": queue}),
            queue=queue,
            expires=None,
            expire_seconds=120,
        )
    for scope in Scope.objects.all():
        if cron_problem(scope.schedule):
            continue  # a row saved before validation matched beat's: no entry, and its pages say why
        minute, hour, day, month, weekday = scope.schedule.split()
        cron_row, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday, timezone="UTC"
        )
        scope_args = json.dumps({"scope_id": scope.pk})
        entry(SCOPE.format(name=scope.name), task_queue.SCHEDULED_SCAN, crontab=cron_row, kwargs=scope_args, enabled=scope.enabled)
    PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(name__in=wanted).delete()
