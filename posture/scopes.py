"""Creating and changing scopes; the beat schedule follows every change."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from posture.models import Scope
from posture.scans.schedules import sync_periodic_tasks


def scope_save(scope: Scope) -> Scope:
    """Validate and save a new or changed scope (raises ValidationError with field messages)."""
    scope.full_clean()
    with transaction.atomic():
        scope.save()
        transaction.on_commit(sync_periodic_tasks)
    return scope


def scope_create(**fields: Any) -> Scope:
    return scope_save(Scope(**fields))
