"""Steps queue the next task by its registered name (posture/task_queue.py), never by importing
posture/tasks.py: every name the code queues, beat schedules or routes must be a registered task,
and a name no task has fails where it is queued instead of waiting in the broker forever."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from celery.exceptions import NotRegistered
from django_celery_beat.models import PeriodicTask

from posture import task_queue
from posture.models import Scope
from posture.scans.schedules import sync_periodic_tasks

POSTURE = Path(task_queue.__file__).parent


def queued_names() -> dict[str, str]:
    """{where: task name} for every `enqueue(NAME, ...)` call in posture/, its name resolved."""
    found = {}
    for path in sorted(POSTURE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "enqueue"):
                continue
            where = f"{path.relative_to(POSTURE.parent)}:{node.lineno}"
            name = node.args[0]
            if isinstance(name, ast.Constant):
                found[where] = name.value
            else:  # START_SCAN or task_queue.START_SCAN: one of the names in posture/task_queue.py
                constant = name.id if isinstance(name, ast.Name) else name.attr  # type: ignore[attr-defined]
                found[where] = getattr(task_queue, constant, f"{constant} (not a name in posture/task_queue.py)")
    return found


def registered() -> set[str]:
    current_app.autodiscover_tasks(force=True)
    return set(current_app.tasks)


def test_every_task_name_the_code_queues_is_a_registered_task() -> None:
    queued = queued_names()
    assert len(queued) >= 10, queued  # the scan steps, the watchdog, governance and the scan request
    assert set(queued.values()) >= {
        task_queue.START_SCAN,
        task_queue.COLLECT_BATCH,
        task_queue.EVALUATE_BATCH,
        task_queue.FINISH_SCAN,
        task_queue.EVALUATE_SCOPES,
    }
    tasks = registered()
    assert {where: name for where, name in queued.items() if name not in tasks} == {}
    # And each task posture registers has its name in posture/task_queue.py.
    assert {name for name in tasks if name.startswith("posture.")} == set(task_queue.TASK_NAMES)


@pytest.mark.django_db
def test_every_task_beat_schedules_is_a_registered_task() -> None:
    Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com", schedule="0 */6 * * *")
    sync_periodic_tasks()
    scheduled = set(PeriodicTask.objects.filter(name__startswith="arc-posture: ").values_list("task", flat=True))
    assert scheduled == {
        task_queue.WATCHDOG,
        task_queue.WORKER_HEARTBEAT,
        task_queue.SCHEDULED_SCAN,
        task_queue.EXPIRE_EXPORTS,
        task_queue.ALERT_TICK,
    }
    assert scheduled <= registered()


def test_collecting_tasks_are_routed_to_the_collect_queue_and_the_rest_to_default() -> None:
    tasks = registered()
    assert set(current_app.conf.task_routes) <= tasks
    queues = {name: current_app.amqp.router.route({}, name)["queue"].name for name in task_queue.TASK_NAMES}
    assert {name for name, queue in queues.items() if queue == "collect"} == {task_queue.START_SCAN, task_queue.COLLECT_BATCH}
    assert {queue for name, queue in queues.items() if name not in (task_queue.START_SCAN, task_queue.COLLECT_BATCH)} == {"default"}


@pytest.mark.parametrize("in_process", [True, False], ids=["tasks in process", "tasks through the broker"])
def test_queuing_a_name_no_task_has_fails_where_it_is_queued(in_process: bool, request: Any) -> None:
    if not in_process:
        request.getfixturevalue("celery_live")
    assert task_queue.tasks_run_inline() is in_process
    with pytest.raises(NotRegistered, match="posture.no_such_task"):
        task_queue.enqueue("posture.no_such_task", scan_id="0")


RACE = """
import os, threading, django
os.environ["DJANGO_SETTINGS_MODULE"] = "web.settings.test"
django.setup()
import web  # the Celery app, as a web process has it: no task module imported yet
from posture import task_queue
assert task_queue.START_SCAN not in web.celery_app.tasks
start, failures = threading.Barrier(8), []
def look_up():
    start.wait()
    try:
        task_queue.registered_task(task_queue.START_SCAN)
    except Exception as exc:
        failures.append(repr(exc))
threads = [threading.Thread(target=look_up) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(failures)
"""


def test_threads_of_a_fresh_web_process_all_find_the_task_they_queue() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", RACE], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
