"""The Celery app. Delivery guarantees are decided here, once, for every task."""

from __future__ import annotations

import logging.config
import os
from typing import Any

from celery import Celery
from celery.signals import setup_logging

from posture.task_queue import COLLECT_BATCH, START_SCAN

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings.base")

app = Celery("arc_posture")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Durable delivery: a message is acknowledged only after its task finished, and a task whose
    # worker died is put back on the queue. Every task is safe to run twice (each claims its
    # work with a conditional UPDATE), which is what makes both options safe.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Scans are long: a worker takes one message at a time so others are not held behind it.
    worker_prefetch_multiplier=1,
    # Long Azure sweeps go to their own queue and workers, so they never starve alerts or exports.
    task_default_queue="default",
    task_routes={
        START_SCAN: {"queue": "collect"},
        COLLECT_BATCH: {"queue": "collect"},
    },
    # State lives in the database; nobody reads task results.
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # A broker restart does not stop tasks already running (their database work does not need
    # Redis): they finish, and a message Redis hands out again finds its work claimed and does
    # nothing. (The worker exit on a Redis restart was celery 5.7.0's, see pyproject.toml.)
    worker_cancel_long_running_tasks_on_connection_loss=False,
    worker_send_task_events=True,
    task_send_sent_event=True,
    # Logging is Django's LOGGING (format, level), in workers and beat too; see _django_logging.
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()


@setup_logging.connect
def _django_logging(**_kwargs: Any) -> None:
    # With a receiver here Celery installs no handlers or format of its own; LOG_LEVEL, not -l, sets the level.
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
