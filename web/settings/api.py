"""The read-only API (/api/v1/): Django REST framework, drf-spectacular and token settings, read
from the environment; star-imported by web/settings/base.py."""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

from posture.env import env_int, env_str

# The longest lifetime a user may give an API token (posture/tokens.py); the default too.
ARC_API_TOKEN_MAX_DAYS = env_int("ARC_API_TOKEN_MAX_DAYS", 90, minimum=1, maximum=3650)
# An Entra ID user's tokens stop working this many days after their last sign-in (their role is
# only re-read from Entra at sign-in); signing in again revives them.
ARC_API_TOKEN_SIGN_IN_DAYS = env_int("ARC_API_TOKEN_SIGN_IN_DAYS", 30, minimum=1, maximum=3650)
# Requests per token (per signed-in user without one) in a window: N/s, N/min, N/hour or N/day.
# Counted in the "default" cache (Redis in production: every process shares the count).
ARC_API_RATE = env_str("ARC_API_RATE", "600/min")
if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", ARC_API_RATE):
    raise ImproperlyConfigured(f"ARC_API_RATE must read like 600/min (N/s, N/min, N/hour or N/day), not {ARC_API_RATE!r}")

REST_FRAMEWORK = {
    # JSON only: no browsable API (its forms would need inline script) and no form bodies.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["web.api.auth.BearerTokenAuthentication", "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated", "web.api.access.PostureAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["web.api.access.TokenRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "web.api.schema.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# RFC 9457 problem details, through drf-standardized-errors (web/api/problems.py says why subclassed).
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "web.api.problems.ProblemHandler",
    "EXCEPTION_FORMATTER_CLASS": "web.api.problems.ProblemFormatter",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Arc Posture API",
    "DESCRIPTION": "Read-only posture of Azure Arc-enabled Kubernetes fleets, and evidence exports. See docs/api.md.",
    "VERSION": "1.0.0",
    # Request bodies get components of their own (minLength on required strings): no "" accepted
    # by the schema and refused by the API.
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI's assets from drf-spectacular-sidecar, served by the app: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Status and raw_status of a result share one enum.
    "ENUM_NAME_OVERRIDES": {"ResultStatusEnum": "posture.models.results.Status.choices"},
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False, "displayOperationId": True},
}
