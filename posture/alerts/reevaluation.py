"""Alerts from re-evaluations without a scan (posture/scans/evaluation.py evaluate_scope with
scan=None: after an attestation or exception changes, when one lapses, or the catalog changes).

Such a run writes its change events with scan=None, chunk by chunk, each chunk committed on its
own. A per-scope cursor (AlertCursor) records the last event id of the scope already passed;
planning reads the scope's scan-less events after it, writes their notifications and advances
the cursor in one transaction, holding the cursor row locked so two planners take turns. A
process that dies before the commit leaves the cursor where it was, and the next run plans the
same events again: nothing is lost, nothing doubles (the source key names the last event passed).

Why a cursor on ids is safe: ids come from a sequence when a chunk's events are inserted, and a
scope's evaluations, a scan's included, take turns under its evaluation lock, their chunks
committed one after the other by one writer (posture/store/results.py Writer). So once an event
of a scope is visible, every event of that scope with a smaller id is committed and visible
too: the cursor never steps over one still in flight. A run observed half-way gives two
notifications, its chunks seen so far and the rest, never a lost or repeated event.

It runs after each re-evaluation (posture/tasks.py evaluate_scopes) and, for work a dead process
left, from the periodic tick (posture/alerts/timed.py plan_timed_alerts).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from posture.alerts import triggers
from posture.alerts.kinds import REEVALUATION_KINDS, Kind
from posture.alerts.planning import select, write_notifications
from posture.models import AlertCursor, AlertRule, ChangeEvent, Scope, ScoreHistory

log = logging.getLogger(__name__)

# Events planned per transaction; a larger run is planned over several.
EVENTS_PER_RUN = 20_000


def plan_reevaluation_alerts(scope_id: int) -> list[str]:
    """Plan the alerts of the scope's re-evaluation events not planned yet; the ids of the rows
    to send (queued once the transaction commits)."""
    to_send: list[str] = []
    while True:
        sent, more = _plan_once(scope_id)
        to_send += sent
        if not more:
            return to_send


def plan_after_run(scope_id: int) -> None:
    """plan_reevaluation_alerts right after a re-evaluation: a failure is logged, never the
    run's (its verdicts stand), and the periodic tick plans the same events again."""
    try:
        plan_reevaluation_alerts(scope_id)
    except Exception:  # noqa: BLE001 - the cursor did not move: the tick retries
        log.exception("scope %s: re-evaluation alerts could not be planned; the tick will retry", scope_id)


def _plan_once(scope_id: int) -> tuple[list[str], bool]:
    with transaction.atomic():
        if not Scope.objects.filter(pk=scope_id).exists():
            return [], False
        AlertCursor.objects.get_or_create(scope_id=scope_id)  # a new scope: every event is new
        cursor = AlertCursor.objects.select_for_update().get(scope_id=scope_id)
        # The cursor passes the scope's scan events too (planned when their scan closes): an
        # event whose scan is deleted later (scan=NULL) is never taken for a re-evaluation's.
        window = ChangeEvent.objects.filter(cluster__scope_id=scope_id, pk__gt=cursor.last_event_id)
        last = window.order_by("pk").values_list("pk", flat=True)[EVENTS_PER_RUN - 1 : EVENTS_PER_RUN].first()
        if last is None:
            last = window.aggregate(last=Max("pk"))["last"]
            more = False
        else:
            more = True
        if last is None:
            return [], False
        events = window.filter(pk__lte=last, scan__isnull=True)
        rules = list(AlertRule.objects.filter(enabled=True, kind__in=REEVALUATION_KINDS))
        to_send: list[str] = []
        if rules and events.exists():
            kinds = {rule.kind for rule in rules}
            candidates = triggers.event_candidates(events) if kinds - {Kind.SCORE_DROP} else {}
            if Kind.SCORE_DROP in kinds:
                candidates[Kind.SCORE_DROP] = triggers.score_candidates(_scores_of(events))
            by_rule = select(rules, candidates)
            to_send = write_notifications(rules, by_rule, source=f"reevaluation:{scope_id}:{last}", scan=None, now=timezone.now())
        AlertCursor.objects.filter(pk=cursor.pk).update(last_event_id=last)
    if to_send:
        log.info("scope %s: %s notifications of re-evaluations up to event %s", scope_id, len(to_send), last)
    return to_send, more


def _scores_of(events: QuerySet[ChangeEvent]) -> QuerySet[ScoreHistory]:
    """The score rows the runs of `events` wrote: a run stamps its events and score rows with
    the same time, scan-less. A score changes only with some verdict, so a run that changed a
    score recorded an event of that cluster at that time (a change of detail alone moves no
    score: scores are computed from the verdicts' statuses)."""
    pairs = list(events.order_by().values_list("cluster_id", "at").distinct())
    clusters = sorted({c for c, _ in pairs})
    times = sorted({t for _, t in pairs})
    return ScoreHistory.objects.filter(scan__isnull=True, cluster_id__in=clusters, at__in=times)
