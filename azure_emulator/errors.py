"""Error bodies in the shapes ARM, ARG and Entra ID use."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from azure_emulator.messages import Response, json_response

INVALID_QUERY = {
    "code": "InvalidQuery",
    "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph "
    "service and fix the error before retrying.",
}
RATE_LIMITING_DETAIL = {
    "code": "RateLimiting",
    "message": "Client application has been throttled and should not attempt to repeat the request "
    "until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling "
    "for help.",
}


def support_message() -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
    return f"Please provide below info when asking for support: timestamp = {stamp}, correlationId = {uuid.uuid4()}."


def arm_error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return json_response(status, {"error": error}, headers)


def arg_bad_request(details: list[dict[str, Any]], *, invalid_query: bool = True) -> Response:
    """ARG's 400 envelope: BadRequest + support message, detail entries after InvalidQuery."""
    return arm_error(
        400,
        "BadRequest",
        support_message(),
        details=[INVALID_QUERY, *details] if invalid_query else details,
    )


def arg_rate_limited(headers: dict[str, str]) -> Response:
    return arm_error(429, "RateLimiting", support_message(), headers, [RATE_LIMITING_DETAIL])


def arm_throttled(retry_after: int, headers: dict[str, str]) -> Response:
    return arm_error(
        429,
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type - "
        "Read_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits",
        {**headers, "Retry-After": str(retry_after)},
    )


def authorization_failed(client_id: str, object_id: str, action: str, scope: str) -> Response:
    return arm_error(
        403,
        "AuthorizationFailed",
        f"The client '{client_id}' with object id '{object_id}' does not have authorization to "
        "perform "
        f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
        "granted, please refresh your credentials.",
    )


def server_error(status: int) -> Response:
    """Default body of an injected 5xx/4xx when the fault names none."""
    codes = {
        500: "InternalServerError",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
        408: "RequestTimeout",
    }
    code = codes.get(status, f"Http{status}")
    return arm_error(status, code, f"The service returned {status} ({code}). {support_message()}")


def aad_error(status: int, error: str, code: int, description: str, base_url: str) -> Response:
    now = datetime.now(UTC)
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    return json_response(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{base_url}/error?code={code}",
        },
    )
