"""The read-only API (/api/v1/): Django REST framework, drf-spectacular and token settings, read
from the environment; star-imported by web/settings/base.py."""

from __future__ import annotations

from posture.env import env_int

# The longest lifetime a user may give an API token (posture/tokens.py); the default too.
ARC_API_TOKEN_MAX_DAYS = env_int("ARC_API_TOKEN_MAX_DAYS", 90, minimum=1, maximum=3650)
