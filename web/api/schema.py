"""The OpenAPI document: every operation also lists the problem answers it can give, as
`application/problem+json` (web/api/problems.py), so clients and Schemathesis know them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from web.api.problems import PROBLEM_JSON, ProblemSerializer

ALWAYS = {
    "401": "No token, or an unknown, expired or revoked one",
    "403": "The token's user (or its scopes) may not do this",
    "406": "The Accept header asks for something other than JSON",
    "429": "Too many requests for this token; see Retry-After",
}
BAD_REQUEST = "A parameter or body field is unknown or has a bad value; `errors` names each"
NOT_FOUND = "No such object"


class ProblemAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        errors = dict(ALWAYS)
        # Every operation refuses unknown query parameters and bad values (web/api/base.py).
        errors["400"] = BAD_REQUEST
        if self.path_regex and "{" in self.path:
            errors["404"] = NOT_FOUND
        errors.update(getattr(self.view, "problem_statuses", {}))
        for code, description in sorted(errors.items()):
            if code not in responses:
                response = self._get_response_for_code(ProblemSerializer, code, [PROBLEM_JSON], direction)
                response["description"] = description
                responses[code] = response
        return responses


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "web.api.auth.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "arcp_<prefix>_<secret>"}
