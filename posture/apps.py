from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _after_migrate(**kwargs: Any) -> None:
    from posture.roles import sync_roles
    from posture.scans.schedules import sync_periodic_tasks

    sync_roles()
    sync_periodic_tasks()


class PostureConfig(AppConfig):
    name = "posture"
    verbose_name = "Arc Posture"

    def ready(self) -> None:
        from posture.tokens import connect_invalidation

        post_migrate.connect(_after_migrate, sender=self)
        connect_invalidation()
