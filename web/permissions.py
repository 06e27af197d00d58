"""Role permissions read from the cache instead of two queries on every request.

Django's ModelBackend asks the database for a user's own and group permissions once per request
(about 2.5 ms of CPU with the ORM here, on every page and API call). The set is kept in the
"default" cache (Redis in production, shared by every process) and dropped the moment a role
changes: any change to a user's groups or permissions, or to a group's permissions, deletes the
affected users' entries (m2m_changed covers add, remove, set and clear from either side). The
key carries the user's id, creation time and superuser flag, so a recreated id never reads
another user's set. PERMISSIONS_SECONDS bounds an entry's life should a change bypass the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db.models.signals import m2m_changed

PERMISSIONS_SECONDS = 300


def _key(pk: Any, joined: Any, superuser: bool) -> str:
    return f"perms:{pk}:{joined.timestamp() if joined else ''}:{int(superuser)}"


def _keys_of(user_ids: Iterable[Any]) -> list[str]:
    rows = get_user_model().objects.filter(pk__in=list(user_ids)).values_list("pk", "date_joined", "is_superuser")
    return [_key(pk, joined, superuser) for pk, joined, superuser in rows]


class CachedPermissionsMixin:
    """For a ModelBackend subclass: get_all_permissions from the cache, else as Django computes it."""

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            key = _key(user_obj.pk, user_obj.date_joined, user_obj.is_superuser)
            perms = caches["default"].get(key)
            if perms is None:
                perms = super().get_all_permissions(user_obj, obj)  # type: ignore[misc]
                caches["default"].set(key, perms, PERMISSIONS_SECONDS)
            user_obj._perm_cache = perms
        return user_obj._perm_cache


def forget(user_ids: Iterable[Any]) -> None:
    keys = _keys_of(user_ids)
    if keys:
        caches["default"].delete_many(keys)


def _changed(sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[Any] | None, **kwargs: Any) -> None:
    # pre_clear: the members are still there to be named; after add/remove the set is final.
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    users = get_user_model()
    if isinstance(instance, users):  # user.groups / user.user_permissions
        forget([instance.pk])
    elif sender is users.groups.through and pk_set is not None:  # group.user_set.add/remove
        forget(pk_set)
    elif isinstance(instance, Group):  # group.user_set.clear, group.permissions.*
        forget(instance.user_set.values_list("pk", flat=True))
    elif reverse and sender is users.user_permissions.through:  # permission.user_set.*
        forget(pk_set if pk_set is not None else instance.user_set.values_list("pk", flat=True))
    elif reverse:  # permission.group_set.*: every member of the groups it joined or left
        groups = pk_set if pk_set is not None else instance.group_set.values_list("pk", flat=True)
        forget(users.objects.filter(groups__in=list(groups)).values_list("pk", flat=True))


def connect() -> None:
    users = get_user_model()
    for through in (users.groups.through, users.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_changed, sender=through, dispatch_uid=f"web.permissions:{through._meta.label}")
