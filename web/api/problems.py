"""Errors as RFC 9457 problem details (`application/problem+json`), one stable shape:

    {"type", "title", "status", "detail", "instance", "errors": [{"code", "detail", "attr"}]}

drf-standardized-errors 0.16.0 does the work that matters (Django's Http404/PermissionDenied
turned into DRF's, every other exception into a logged 500 without its message, rollback,
Retry-After and WWW-Authenticate kept) but its own body is `{"type": "validation_error",
"errors": [...]}`, not RFC 9457. Its formatter and handler are made to be subclassed: these two
subclasses give the RFC 9457 body and media type and keep everything else.
"""

from __future__ import annotations

from dataclasses import asdict
from http import HTTPStatus
from typing import Any

from drf_standardized_errors.formatter import ExceptionFormatter
from drf_standardized_errors.handler import ExceptionHandler
from drf_standardized_errors.types import VALIDATION_ERROR, ErrorResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response

PROBLEM_JSON = "application/problem+json"


class ProblemFormatter(ExceptionFormatter):
    def format_error_response(self, error_response: ErrorResponse) -> dict[str, Any]:
        status = self.exc.status_code
        errors = [asdict(e) for e in error_response.errors]
        if error_response.type == VALIDATION_ERROR:
            detail = "; ".join(f"{e['attr']}: {e['detail']}" if e["attr"] else e["detail"] for e in errors)
        else:
            detail = errors[0]["detail"] if errors else HTTPStatus(status).phrase
        problem: dict[str, Any] = {
            # about:blank: the status says what kind of problem it is (RFC 9457 §4.2.1); `errors`
            # lists each reason, with the parameter or field it concerns.
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "errors": errors,
        }
        request = self.context.get("request")
        if request is not None:
            problem["instance"] = request.path  # the path only: a query string may hold anything
        return problem


class ProblemHandler(ExceptionHandler):
    def get_response(self, exc: exceptions.APIException, data: dict[str, Any]) -> Response:
        return Response(data, status=exc.status_code, headers=self.get_headers(exc), content_type=PROBLEM_JSON)


class ProblemErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable reason, e.g. invalid, not_authenticated, throttled")
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True, help_text="The parameter or field the error concerns")


class ProblemSerializer(serializers.Serializer):
    """The OpenAPI description of every error answer (web/api/schema.py declares it)."""

    type = serializers.CharField(help_text="about:blank: the status names the problem")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(required=False, help_text="The request's path")
    errors = ProblemErrorSerializer(many=True)
