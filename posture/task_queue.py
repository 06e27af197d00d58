"""Tasks queued by their registered names, so that no step imports the task module.

`posture/tasks.py` registers each task under one of these names and calls the steps; the steps
queue the next one by name. Queuing goes through the registered task rather than
`app.send_task`, so that in-process mode (CELERY_TASK_ALWAYS_EAGER: the embedded default and
the tests) runs it at once, and a name no task has fails here instead of waiting in Redis.
"""

from __future__ import annotations

import threading
from typing import Any

from celery import Task, current_app

START_SCAN = "posture.start_scan"
COLLECT_BATCH = "posture.collect_batch"
EVALUATE_BATCH = "posture.evaluate_batch"
FINISH_SCAN = "posture.finish_scan"
EVALUATE_SCOPES = "posture.evaluate_scopes"
# Queued by beat (posture/scans/schedules.py) and the watchdog's tick.
WATCHDOG = "posture.watchdog"
SCHEDULED_SCAN = "posture.scheduled_scan"
WORKER_HEARTBEAT = "posture.worker_heartbeat"
# Exports built into storage (posture/exports/jobs.py), and beat's daily clean-up of expired ones.
BUILD_EXPORT = "posture.build_export"
EXPIRE_EXPORTS = "posture.expire_exports"
# One alert message from the outbox (posture/alerts/delivery.py).
SEND_NOTIFICATION = "posture.send_notification"
# Several at once, one after the other (a planner's rows): one task message for a few, not each.
SEND_NOTIFICATIONS = "posture.send_notifications"
# Beat's alert tick: due daily digests and the daily cap's summaries (posture/alerts/tick.py).
ALERT_TICK = "posture.alert_tick"

TASK_NAMES = (
    START_SCAN,
    COLLECT_BATCH,
    EVALUATE_BATCH,
    FINISH_SCAN,
    EVALUATE_SCOPES,
    WATCHDOG,
    SCHEDULED_SCAN,
    WORKER_HEARTBEAT,
    BUILD_EXPORT,
    EXPIRE_EXPORTS,
    SEND_NOTIFICATION,
    SEND_NOTIFICATIONS,
    ALERT_TICK,
)


_DISCOVERY = threading.Lock()


def registered_task(name: str) -> Task:
    """The task registered as `name`; celery.exceptions.NotRegistered when there is none."""
    app = current_app
    if name not in app.tasks:
        # A web process has not imported the task modules yet: find them as a worker does. Celery
        # returns at once to a second caller while the first is still importing, so callers queue here.
        with _DISCOVERY:
            if name not in app.tasks:
                app.autodiscover_tasks(force=True)
    return app.tasks[name]


def enqueue(name: str, *, countdown: float | None = None, **kwargs: Any) -> None:
    """Queue the task `name` with these keyword arguments (ids), optionally `countdown` s later."""
    registered_task(name).apply_async(kwargs=kwargs, countdown=countdown)


def tasks_run_inline() -> bool:
    """Whether queued tasks run at once in this process (the embedded default and the tests)."""
    return bool(current_app.conf.task_always_eager)
