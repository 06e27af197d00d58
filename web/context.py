from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from posture.roles import role_from_permissions


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_role": role_from_permissions(user)}
