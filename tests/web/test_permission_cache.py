"""Role permissions come from the cache after the first request, and every way a role changes
drops them at once: no request is ever answered with a role the user no longer holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from posture.roles import assign_role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def fresh(user: Any) -> Any:
    """The user as the next request loads it (no per-object permission cache)."""
    return get_user_model().objects.get(pk=user.pk)


def test_the_second_request_reads_the_permissions_without_a_query() -> None:
    user = make_user("ann", "analyst")
    assert fresh(user).has_perm("posture.run_scan")
    again = fresh(user)
    with CaptureQueriesContext(connection) as queries:
        assert again.has_perm("posture.run_scan") and not again.has_perm("posture.manage_users")
    assert not [q for q in queries.captured_queries if "auth_permission" in q["sql"]]


def demote(user: Any) -> None:
    assign_role(user, "viewer")


def leave_group(user: Any) -> None:
    Group.objects.get(name="analyst").user_set.remove(user)


def clear_groups(user: Any) -> None:
    user.groups.clear()


def group_loses_permission(user: Any) -> None:
    Group.objects.get(name="analyst").permissions.remove(Permission.objects.get(codename="run_scan"))


def permission_leaves_group(user: Any) -> None:
    Permission.objects.get(codename="run_scan").group_set.remove(Group.objects.get(name="analyst"))


def group_emptied(user: Any) -> None:
    Group.objects.get(name="analyst").user_set.clear()


@pytest.mark.parametrize("change", [demote, leave_group, clear_groups, group_loses_permission, permission_leaves_group, group_emptied])
def test_a_role_taken_away_applies_to_the_next_request(change: Callable[[Any], None]) -> None:
    user = make_user("ann", "analyst")
    assert fresh(user).has_perm("posture.run_scan")  # now cached
    change(user)
    assert not fresh(user).has_perm("posture.run_scan")


def test_a_permission_granted_directly_applies_to_the_next_request() -> None:
    user = make_user("vic", "viewer")
    assert not fresh(user).has_perm("posture.run_scan")
    user.user_permissions.add(Permission.objects.get(codename="run_scan"))
    assert fresh(user).has_perm("posture.run_scan")


def test_a_deactivated_user_has_no_permission_even_when_cached() -> None:
    user = make_user("ann", "analyst")
    assert fresh(user).has_perm("posture.run_scan")
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert not fresh(user).has_perm("posture.run_scan")
