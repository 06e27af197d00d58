from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from posture.roles import user_role


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_role": user_role(user)}
