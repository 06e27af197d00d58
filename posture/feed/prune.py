"""Pruning the change feed: entries older than ARC_FEED_RETENTION_DAYS (default 90) go, always
a prefix of the sequence, and the horizon records the last seq pruned so that a client whose
cursor points before it is told it missed entries (410) instead of silently skipping them."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from posture.models import FeedEntry, FeedHorizon

log = logging.getLogger(__name__)

HORIZON = 1  # the pk of FeedHorizon's one row


def retention_days() -> int:
    return settings.ARC_FEED_RETENTION_DAYS


def pruned_through() -> int:
    """The last seq pruned (0 before the first prune)."""
    return FeedHorizon.objects.filter(pk=HORIZON).values_list("pruned_through", flat=True).first() or 0


def prune(now: dt.datetime | None = None) -> int:
    """Delete the entries older than the retention, as a prefix of the sequence: up to the first
    entry still within it. An entry published late with an old `at` behind that one is kept a
    little longer; cutting by time alone would leave holes that no cursor check could see.
    Returns how many entries went."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=retention_days())
    oldest = FeedEntry.objects.order_by("seq").values_list("at", flat=True).first()
    if oldest is None or oldest >= cutoff:
        return 0  # the usual answer, from one look at the first entry
    with transaction.atomic():
        FeedHorizon.objects.get_or_create(pk=HORIZON)
        # Locked: two prunes take turns, and the horizon only moves forward.
        horizon = FeedHorizon.objects.select_for_update().get(pk=HORIZON)
        doomed = FeedEntry.objects.filter(seq__gt=horizon.pruned_through)
        keep_from = doomed.filter(at__gte=cutoff).order_by("seq").values_list("seq", flat=True).first()
        if keep_from is not None:
            doomed = doomed.filter(seq__lt=keep_from)
        last = doomed.aggregate(last=Max("seq"))["last"]
        if last is None:
            return 0
        # Entries published after this transaction began have larger numbers than any entry it
        # can see (posture/feed/publish.py), so they are never in this range.
        deleted, _ = FeedEntry.objects.filter(seq__gt=horizon.pruned_through, seq__lte=last).delete()
        FeedHorizon.objects.filter(pk=HORIZON).update(pruned_through=last)
    log.info("change feed: pruned %s entries through #%s (older than %s days)", deleted, last, retention_days())
    return deleted
