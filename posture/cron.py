"""Cron schedules as celery beat reads them: whether beat can run a scope's five-field expression.

A base module: the Scope model validates its schedule with it, and the beat schedule sync
(posture/scans/schedules.py) skips what it refuses.
"""

from __future__ import annotations

from celery.schedules import crontab

# Cron fields in order, with django-celery-beat's CrontabSchedule name and column length.
CRON_FIELDS = (
    ("minute", "minute", 240),
    ("hour", "hour", 96),
    ("day of month", "day_of_month", 124),
    ("month", "month_of_year", 64),
    ("weekday", "day_of_week", 64),
)


# The most days each month can have (February in a leap year).
DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def cron_problem(expression: str) -> str | None:
    """Why beat cannot run this five-field cron expression (UTC), or None when it can.

    Parsed by celery's own crontab, as beat parses each CrontabSchedule: what it accepts runs
    (`0 9 * * mon-fri`), what it rejects (`*/0 * * * *`) beat would disable. A day no month has
    (`0 0 30 2 *`) is refused too: beat keeps it and never fires it.
    """
    parts = (expression or "").split()
    if len(parts) != 5:
        return "it needs five fields: minute hour day-of-month month weekday"
    for (label, field, length), part in zip(CRON_FIELDS, parts, strict=True):
        if len(part) > length:
            return f"the {label} field is longer than {length} characters"
        try:
            crontab(**{field: part})
        except Exception as exc:  # celery raises ValueError, its ParseException and others
            return f"{label} {part!r}: {str(exc).rstrip('.')}"
    try:
        schedule = crontab(**{field: part for (_, field, _), part in zip(CRON_FIELDS, parts, strict=True)})
    except Exception as exc:
        return str(exc).rstrip(".")
    # Beat takes `0 0 30 2 *` and never fires it: a scope that silently never scans.
    if not any(day <= DAYS_IN_MONTH[month] for month in schedule.month_of_year for day in schedule.day_of_month):
        return "no month has that day, so it would never run"
    return None
