"""Scope schedules are checked by the crontab parsing beat itself uses, and a schedule beat cannot
run is never silently dropped: it gets no beat entry and the pages say so."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from posture.models import Scope
from posture.models.scans import validate_cron
from posture.scans.schedules import SCOPE, sync_periodic_tasks
from posture.scopes import scope_create

TENANT = "contoso.onmicrosoft.com"
RUNNABLE = ("0 9 * * mon-fri", "0 */6 * * *", "30 2 1 */3 sun", "0,30 8-18 * * 1-5", "0 0 29 2 *")
UNRUNNABLE = ("99 99 99 99 99", "*/0 * * * *", "0 9 * * someday", "0 9 * *", "* * * * * *", "")
# Beat parses these and never fires them.
NEVER_DUE = ("0 0 30 2 *", "0 0 31 4,6,9,11 *")


def beat_can_parse(expression: str) -> bool:
    """What django-celery-beat does with a CrontabSchedule row when beat loads its entry."""
    minute, hour, day, month, weekday = expression.split()
    row = CrontabSchedule(minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday, timezone="UTC")
    try:
        return row.schedule is not None
    except Exception:
        return False


@pytest.mark.parametrize("expression", RUNNABLE)
def test_the_validator_accepts_schedules_beat_runs(expression: str) -> None:
    assert beat_can_parse(expression)
    validate_cron(expression)


@pytest.mark.parametrize("expression", UNRUNNABLE)
def test_the_validator_refuses_schedules_beat_cannot_run_with_a_reason(expression: str) -> None:
    assert len(expression.split()) != 5 or not beat_can_parse(expression)
    with pytest.raises(ValidationError, match="is not a cron schedule beat can run: .+"):
        validate_cron(expression)


@pytest.mark.parametrize("expression", NEVER_DUE)
def test_the_validator_refuses_a_day_no_month_has(expression: str) -> None:
    with pytest.raises(ValidationError, match="no month has that day"):
        validate_cron(expression)


@pytest.mark.django_db(transaction=True)
def test_a_weekday_name_schedule_becomes_a_beat_entry_beat_keeps_enabled() -> None:
    scope = scope_create(name="corp", tenant_id=TENANT, schedule="0 9 * * mon-fri")
    task = PeriodicTask.objects.get(name=SCOPE.format(name="corp"))
    entry = ModelEntry(task)  # beat disables (and only logs) an entry whose crontab it cannot parse
    task.refresh_from_db()
    assert task.enabled and entry.schedule.day_of_week == {1, 2, 3, 4, 5} and entry.kwargs == {"scope_id": scope.pk}


@pytest.mark.django_db
def test_stored_rows_with_a_bad_schedule_get_no_beat_entry_and_do_not_stop_the_others() -> None:
    good = Scope.objects.create(name="good", tenant_id=TENANT, schedule="0 */6 * * *")
    # Rows saved before schedules were checked as beat checks them (validators do not run on create).
    Scope.objects.create(name="never", tenant_id=TENANT, schedule="99 99 99 99 99")
    Scope.objects.create(name="words", tenant_id=TENANT, schedule="every hour")
    sync_periodic_tasks()
    scans = PeriodicTask.objects.filter(task="posture.scheduled_scan")
    assert list(scans.values_list("name", "kwargs")) == [(SCOPE.format(name="good"), f'{{"scope_id": {good.pk}}}')]


@pytest.mark.django_db
def test_a_schedule_beat_cannot_run_is_shown_on_the_scope_pages_and_the_overview(admin_client: Any, viewer_client: Any) -> None:
    Scope.objects.create(name="good", tenant_id=TENANT, schedule="0 */6 * * *")
    Scope.objects.create(name="never", tenant_id=TENANT, schedule="*/0 * * * *")
    scopes = viewer_client.get(reverse("scope-list")).content.decode()
    assert scopes.count("Beat cannot run this schedule") == 1 and "slice step cannot be zero" in scopes
    overview = viewer_client.get(reverse("overview")).content.decode()
    assert "Schedules beat cannot run" in overview
    assert "never: <code>*/0 * * * *</code> (minute &#x27;*/0&#x27;: slice step cannot be zero)" in overview
    assert "good: <code>" not in overview
    admin_overview = admin_client.get(reverse("overview")).content.decode()
    assert f'<a href="{reverse("scope-edit", args=["never"])}">never</a>: <code>*/0 * * * *</code>' in admin_overview
    edit = admin_client.get(reverse("scope-edit", args=["never"])).content.decode()
    assert "The saved schedule <code>*/0 * * * *</code> cannot run" in edit
    assert "cannot run" not in admin_client.get(reverse("scope-edit", args=["good"])).content.decode()


@pytest.mark.django_db
def test_the_overview_and_scope_list_say_nothing_when_every_schedule_runs(viewer_client: Any) -> None:
    Scope.objects.create(name="good", tenant_id=TENANT, schedule="0 9 * * mon-fri")
    assert "Beat cannot run" not in viewer_client.get(reverse("scope-list")).content.decode()
    assert "Schedules beat cannot run" not in viewer_client.get(reverse("overview")).content.decode()
