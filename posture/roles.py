"""The three roles, as Django groups holding the product's permissions (posture.Access)."""

from __future__ import annotations

from typing import Any

VIEWER, ANALYST, ADMIN = "viewer", "analyst", "admin"

_VIEW = ["view_posture"]
_ANALYST = _VIEW + ["run_scan", "attest_control", "request_exception", "export_evidence", "manage_alerts"]
_ADMIN = _ANALYST + ["manage_scopes", "approve_exception", "manage_users"]

ROLE_PERMISSIONS: dict[str, list[str]] = {VIEWER: _VIEW, ANALYST: _ANALYST, ADMIN: _ADMIN}


def sync_roles() -> None:
    """Create or correct the role groups; idempotent."""
    from django.contrib.auth.models import Group, Permission

    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label="posture", codename__in=codenames)
        group.permissions.set(perms)


def role_from_permissions(user: Any) -> str | None:
    """The highest role whose permissions the user holds, from the permissions Django caches on
    the user (no query on a page that already checked one)."""
    for role in (ADMIN, ANALYST, VIEWER):
        if all(user.has_perm(f"posture.{codename}") for codename in ROLE_PERMISSIONS[role]):
            return role
    return None


def user_role(user: Any) -> str | None:
    """The highest role a user holds, for display."""
    if user.is_superuser:
        return ADMIN
    names = {g.name for g in user.groups.all()}
    for role in (ADMIN, ANALYST, VIEWER):
        if role in names:
            return role
    return None


def assign_role(user: Any, role: str) -> None:
    from django.contrib.auth.models import Group

    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLE_PERMISSIONS)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLE_PERMISSIONS))
    user.groups.add(Group.objects.get(name=role))
