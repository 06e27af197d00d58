"""Every Azure call Arc Posture makes goes through AzureSession.

- Resource Graph queries, page by page ($skipToken loop, 1000 rows a page), paced by the
  principal's shared quota and retried on transient failures.
- Resource Manager GETs (provisioned cluster instances), with ARM's own throttling respected.
- One retry layer (this one): azure-core's own retries are off, because they ignore the ARG
  quota headers and would retry a POST only on some status codes.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    DeserializationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import policies
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, ResultFormat
from django.conf import settings

from posture.collect.credentials import credential_for, describe_credential, endpoints_for
from posture.collect.errors import AzureError, ForbiddenError
from posture.collect.pacing import Observation, QuotaPacer, observation_from_headers, pacer_for
from posture.collect.queries import ARG_API_VERSION, Query
from posture.collect.transport import HeadersFirstTransport

log = logging.getLogger(__name__)
PAGE_SIZE = 1000
MAX_SUBSCRIPTIONS_PER_REQUEST = 1000
USER_AGENT = "arc-posture/0.1"


@dataclass
class Page:
    rows: list[dict[str, Any]]
    raw: bytes
    request_id: str


@dataclass
class CallStats:
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    quota_wait_seconds: float = 0.0


@dataclass
class RetryBudget:
    attempts: int = 0
    throttles: int = 0
    throttle_wait: float = 0.0
    renewed: bool = False  # this request already had its rejected token renewed once
    started: float = field(default_factory=time.monotonic)


def _backoff(attempt: int) -> float:
    """Capped exponential backoff with "equal jitter": never zero, spread across workers."""
    ceiling = min(settings.ARC_AZURE_BACKOFF_CAP_SECONDS, settings.ARC_AZURE_BACKOFF_BASE_SECONDS * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311


def _error_text(exc: HttpResponseError) -> tuple[str, str]:
    """(code, message) from an ARM error body, tolerating any body."""
    code = getattr(getattr(exc, "error", None), "code", None) or ""
    message = getattr(getattr(exc, "error", None), "message", None) or ""
    details: list[str] = []
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else {}
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = code or str(error.get("code", ""))
        message = message or str(error.get("message", ""))
        for detail in error.get("details") or []:
            if isinstance(detail, dict):
                details.append(f"{detail.get('code', '')}: {detail.get('message', '')}".strip(": "))
    except (ValueError, AttributeError, TypeError):
        pass
    text = message or (exc.message or str(exc)).splitlines()[0]
    if details:
        text = f"{text} ({'; '.join(details)})"
    return code, text[:2000]


class AzureSession:
    """One scope's connection to Azure, used by one task at a time."""

    def __init__(self, scope: Any, *, on_request: Callable[[], None] | None = None, priority: int = 0) -> None:
        self.scope = scope
        self.priority = priority  # for the quota: lower goes first
        self.endpoints = endpoints_for(scope)
        self.stats = CallStats()
        self.on_request = on_request or (lambda: None)
        self._reconnect_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        # Bumped by every reconnect, so threads that all saw one token rejected renew it once.
        self.generation = 0
        self._retired: list[Any] = []
        self._connect()
        principal = f"{scope.tenant_id}:{describe_credential(scope)}:{self.endpoints.arm_endpoint}".lower()
        self.pacer: QuotaPacer = pacer_for(principal)

    def _connect(self) -> None:
        renew = bool(self.generation)  # Azure rejected the token: the process's credential is renewed too
        if renew:  # closed with the session: other threads may still be mid-request on them
            self._retired += [self.arg, self.arm]
        self.generation += 1
        self.credential = credential_for(self.scope, renew=renew)
        common: dict[str, Any] = {
            "credential_scopes": [self.endpoints.credential_scope],
            "connection_verify": self.endpoints.verify,
            "retry_total": 0,
            "user_agent": USER_AGENT,
        }
        self.arg = ResourceGraphClient(
            self.credential,
            base_url=self.endpoints.arm_endpoint,
            api_version=ARG_API_VERSION,
            transport=HeadersFirstTransport(connection_verify=self.endpoints.verify),
            **common,
        )
        self.arm = ARMPipelineClient(
            base_url=self.endpoints.arm_endpoint,
            policies=[
                policies.RequestIdPolicy(),
                policies.HeadersPolicy(),
                policies.UserAgentPolicy(USER_AGENT),
                policies.ProxyPolicy(),
                policies.RetryPolicy(retry_total=0),
                ARMChallengeAuthenticationPolicy(self.credential, self.endpoints.credential_scope),
                ARMHttpLoggingPolicy(),
            ],
            connection_verify=self.endpoints.verify,
        )

    def _count(self, **deltas: float) -> None:
        with self._stats_lock:  # query streams and ARM GETs run in threads
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def close(self) -> None:
        for client in [*self._retired, self.arg, self.arm]:  # the credential is the process's (credentials.py)
            close = getattr(client, "close", None)
            if close:
                close()

    @property
    def _timeouts(self) -> dict[str, float]:
        return {
            "connection_timeout": settings.ARC_HTTP_CONNECT_TIMEOUT,
            "read_timeout": settings.ARC_HTTP_READ_TIMEOUT,
        }

    # --- Resource Graph -------------------------------------------------------------------
    def query(
        self,
        query: Query,
        *,
        subscriptions: list[str] | None = None,
        management_groups: list[str] | None = None,
    ) -> Iterator[Page]:
        """Every page of `query` over the given scope (neither = the whole tenant)."""
        if subscriptions is not None and len(subscriptions) > MAX_SUBSCRIPTIONS_PER_REQUEST:
            raise ValueError(f"ARG accepts at most {MAX_SUBSCRIPTIONS_PER_REQUEST} subscriptions per request")
        skip_token: str | None = None
        while True:
            request = QueryRequest(
                subscriptions=subscriptions or None,
                management_groups=management_groups or None,
                query=query.text,
                options=QueryRequestOptions(
                    top=PAGE_SIZE,
                    skip_token=skip_token,
                    result_format=ResultFormat.OBJECT_ARRAY,
                    allow_partial_scopes=False,
                ),
            )
            response, http = self._post(request, query, subscriptions or ())
            if str(response.result_truncated).lower() == "true":
                raise AzureError(
                    f"Resource Graph truncated the result of query {query.name!r}: it must project `id`.",
                    kind="bad_query",
                    permanent=True,
                )
            rows = response.data if isinstance(response.data, list) else []
            yield Page(rows=rows, raw=http.body(), request_id=http.headers.get("x-ms-request-id", ""))
            skip_token = response.skip_token
            if not skip_token:
                return

    def _post(self, request: QueryRequest, query: Query, subscriptions: tuple[str, ...] | list[str]) -> Any:
        budget = RetryBudget()
        while True:
            ticket, waited = self.pacer.acquire(self.priority)
            self._count(quota_wait_seconds=waited, requests=1)
            seen: list[Observation] = []
            generation = self.generation
            try:
                response, http = self.arg.resources(
                    request,
                    cls=lambda pr, body, _h: (body, pr.http_response),
                    # Read the quota the moment the answer's headers arrive, before the page is even
                    # downloaded: other workers may be waiting on exactly this news.
                    on_headers=lambda response, t=ticket, s=seen, b=budget: s.append(self._observe(t, response, b)),
                    **self._timeouts,
                )
            except (ServiceRequestError, ServiceResponseError, DecodeError, DeserializationError, OSError) as exc:
                # Before HttpResponseError: DecodeError (a cut or invalid body) is one of them.
                if not seen:
                    self.pacer.release(ticket)
                self.on_request()
                self._retry_or_raise(self._transport_error(exc, f"query {query.name!r}"), budget, generation)
                continue
            except HttpResponseError as exc:
                if not seen:
                    self.pacer.release(ticket)
                self.on_request()
                error = self._translate(exc, f"query {query.name!r}", tuple(subscriptions))
                throttled = seen[0] if seen and seen[0].throttled else None
                self._retry_or_raise(error, budget, generation, throttle_wait=throttled.resets_after if throttled else None)
                continue
            self.on_request()
            return response, http

    def _observe(self, ticket: int, response: Any, budget: RetryBudget) -> Observation:
        throttled = response.status_code == 429
        seen = observation_from_headers(response.headers, throttled=throttled)
        if throttled and seen.resets_after is None:
            # A 429 without quota headers: back off exponentially instead.
            seen = Observation(seen.remaining, _backoff(budget.throttles + 1), True)
        if throttled or seen.remaining is not None:
            self.pacer.observe(ticket, seen)
        else:
            self.pacer.release(ticket)
        return seen

    # --- Resource Manager -----------------------------------------------------------------
    def get_resource(self, resource_id: str, api_version: str) -> tuple[dict[str, Any] | None, bytes]:
        """(body, raw bytes) of an ARM GET; (None, raw) when the resource does not exist."""
        budget = RetryBudget()
        what = f"GET {resource_id.rsplit('/providers/', 1)[-1]}"
        while True:
            self._count(requests=1)
            generation = self.generation
            request = HttpRequest("GET", f"{self.endpoints.arm_endpoint}{resource_id}", params={"api-version": api_version})
            try:
                response = self.arm.send_request(request, **self._timeouts)
                raw = response.read()
            except (ServiceRequestError, ServiceResponseError, OSError) as exc:
                self.on_request()
                self._retry_or_raise(self._transport_error(exc, what), budget, generation)
                continue
            self.on_request()
            self._respect_arm_throttle(response.headers)
            if response.status_code == 404:
                return None, raw
            if response.status_code == 200:
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._retry_or_raise(
                        AzureError(f"{what}: Resource Manager sent a body that is not JSON.", kind="malformed", permanent=False),
                        budget,
                        generation,
                    )
                    continue
                return (body if isinstance(body, dict) else None), raw
            error = self._translate(HttpResponseError(response=response), what, ())
            if response.status_code == 429:
                pause = _retry_after(response.headers) or _backoff(budget.throttles + 1)
                self._retry_or_raise(error, budget, generation, throttle_wait=pause)
                time.sleep(pause)
            else:
                self._retry_or_raise(error, budget, generation)

    def _respect_arm_throttle(self, headers: Any) -> None:
        remaining = headers.get("x-ms-ratelimit-remaining-subscription-reads")
        if remaining is not None and remaining.isdigit() and int(remaining) < settings.ARC_ARM_READS_RESERVE:
            # Leave the bucket a moment to refill instead of running it dry and eating 429s.
            time.sleep(1.0)

    # --- Errors and retries ---------------------------------------------------------------
    def _retry_or_raise(self, error: AzureError, budget: RetryBudget, generation: int, *, throttle_wait: float | None = None) -> None:
        if error.kind == "auth_expired" and not budget.renewed:
            # A token rejected mid-scan (expired, revoked): get a new one, once for all the threads
            # that sent it; the request is retried. Rejected again after that is final.
            budget.renewed = True
            with self._reconnect_lock:
                if self.generation == generation:
                    self._connect()
            return
        if error.permanent:
            raise error
        if throttle_wait is not None:
            self._count(throttled=1)
            budget.throttles += 1
            budget.throttle_wait += throttle_wait
            if budget.throttle_wait > settings.ARC_THROTTLE_MAX_WAIT_SECONDS:
                raise AzureError(
                    f"Azure kept throttling for {budget.throttle_wait:.0f} s; giving up this attempt.",
                    kind="throttled",
                    permanent=False,
                    status=429,
                )
            return  # ARG: the pacer waits out the reset; ARM: the caller sleeps Retry-After
        budget.attempts += 1
        self._count(retries=1)
        if budget.attempts >= settings.ARC_AZURE_MAX_ATTEMPTS:
            raise error
        pause = _backoff(budget.attempts)
        log.info("retrying after %s (%.1f s): %s", error.kind, pause, error.message)
        time.sleep(pause)

    def _transport_error(self, exc: Exception, what: str) -> AzureError:
        if isinstance(exc, (DecodeError, DeserializationError)):
            return AzureError(f"{what}: Azure sent a response that is not valid JSON.", kind="malformed", permanent=False)
        text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        kind = "timeout" if "timed out" in text.lower() or "timeout" in text.lower() else "network"
        return AzureError(f"{what}: could not reach Azure ({text}).", kind=kind, permanent=False)

    def _translate(self, exc: HttpResponseError, what: str, subscriptions: tuple[str, ...]) -> AzureError:
        status = exc.status_code
        code, text = _error_text(exc)
        identity = describe_credential(self.scope)
        if status is None and isinstance(exc, ClientAuthenticationError):
            token_status = getattr(getattr(exc, "response", None), "status_code", None)
            # Entra ID's own verdicts (AADSTS codes: bad secret, unknown app or tenant, ...) will
            # not change on retry; a broken or unreachable token endpoint may recover.
            permanent = "AADSTS" in text or (token_status is not None and 400 <= token_status < 500 and token_status != 429)
            return AzureError(
                f"Entra ID did not issue a token to {identity} for tenant {self.scope.tenant_id}: {text}",
                kind="auth",
                permanent=permanent,
                status=token_status,
            )
        if status == 401:
            return AzureError(
                f"Azure rejected the token of {identity} ({code or 'Unauthorized'}): {text}",
                kind="auth_expired",
                permanent=True,
                status=401,
                code=code,
            )
        if status == 403:
            subs = ", ".join(subscriptions[:5]) + (" …" if len(subscriptions) > 5 else "")
            return ForbiddenError(
                f"The scanning identity ({identity}) lacks Reader on subscription {subs}: {text}"
                if subscriptions
                else f"The scanning identity ({identity}) may not {what}: {text}",
                kind="forbidden",
                permanent=True,
                status=403,
                code=code,
                subscriptions=subscriptions,
            )
        if status == 429:
            return AzureError(
                f"{what}: throttled by Azure ({code or 'TooManyRequests'}).", kind="throttled", permanent=False, status=429, code=code
            )
        if status in (408, 500, 502, 503, 504):
            return AzureError(
                f"{what}: Azure answered HTTP {status} ({code}): {text}", kind="server", permanent=False, status=status, code=code
            )
        if status == 400:
            return AzureError(f"Resource Graph rejected {what}: {code}: {text}", kind="bad_query", permanent=True, status=400, code=code)
        return AzureError(f"{what}: Azure answered HTTP {status} ({code}): {text}", kind="http", permanent=True, status=status, code=code)


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
