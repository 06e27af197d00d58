from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from posture.roles import ADMIN, ANALYST, VIEWER


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # From the permissions (cached on the user for the request), not another groups query.
    for role, permission in ((ADMIN, "posture.manage_users"), (ANALYST, "posture.run_scan"), (VIEWER, "posture.view_posture")):
        if user.has_perm(permission):
            return {"nav_role": role}
    return {"nav_role": None}
