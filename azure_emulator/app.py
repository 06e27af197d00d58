"""Routing: every request is classified by endpoint kind, faults are applied, then the
matching service answers and the exchange is recorded."""

from __future__ import annotations

import json
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qsl

from azure_emulator import control, errors
from azure_emulator.arg import ARG_PATH, ResourceGraph
from azure_emulator.arm import ResourceManager
from azure_emulator.entra import Entra
from azure_emulator.faults import Fault, Faults, mangle_rows
from azure_emulator.fleet import Fleet
from azure_emulator.identity import Identity
from azure_emulator.messages import Request, Response, json_response
from azure_emulator.recorder import Recorder

_OPENID = re.compile(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$")
_TOKEN = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
_SIGN_IN = re.compile(r"^/(?P<tenant>[^/]+)/(?P<what>oauth2/v2\.0/authorize|discovery/v2\.0/keys)$")
_TRUNCATED = {
    "arg": b'{"totalRecords":1200,"count":100,"resultTruncated":"false","data":[{"id":"/subscr',
    "arm": b'{"id":"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/pro',
}
_TRUNCATED_AAD = b'{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_tok'


class App:
    def __init__(
        self,
        fleet: Fleet,
        identity: Identity,
        faults: Faults,
        arg: ResourceGraph,
        arm: ResourceManager,
        recorder: Recorder,
    ) -> None:
        self.fleet = fleet
        self.identity = identity
        self.faults = faults
        self.arg = arg
        self.arm = arm
        self.recorder = recorder
        self.entra = Entra(identity)  # user sign-in (authorization code flow), beside client credentials
        self.base_url = ""
        self.stopping = threading.Event()  # interrupts slow faults on shutdown

    def handle(self, request: Request) -> Response:
        path = request.path.lower()
        if path.startswith("/_emu/"):
            response = control.handle(self, request)
            self.recorder.record("control", request, response, principal=None, fault=None)
            return response
        kind = self._kind(request, path)
        query_text = _query_text(request) if kind == "arg" else ""
        applied: list[str] = []
        slow = self.faults.take(kind, path, "slow", query_text)
        if slow is not None:
            applied.append("slow")
            self.stopping.wait(slow.seconds)
        fault = self.faults.take(kind, path, "before", query_text)
        principal: str | None = None
        if fault is not None and fault.type != "token_failure":
            applied.append(fault.type)
            response = self._fault_response(kind, fault, request)
        else:
            if fault is not None:
                applied.append(f"token_failure:{fault.how}")
            response, principal = self._serve(kind, request, path, fault, applied, query_text)
        if kind in ("arg", "arm") and not response.drop:
            request_id = str(uuid.uuid4())
            response.headers.setdefault("x-ms-request-id", request_id)
            response.headers.setdefault("x-ms-correlation-request-id", request_id)
        for _ in applied:
            self.recorder.count("faults_applied")
        self.recorder.record(kind, request, response, principal=principal, fault=",".join(applied) or None)
        return response

    def reset(self) -> None:
        self.faults.clear()
        self.recorder.reset()
        self.arg.quota.reset()
        self.arg.cache.clear()
        self.arm.buckets.reset()
        self.entra.reset()

    @staticmethod
    def _kind(request: Request, path: str) -> str:
        if _OPENID.match(request.path):
            return "openid"
        if _TOKEN.match(request.path):
            return "token"
        if _SIGN_IN.match(request.path):
            return "signin"
        if path.rstrip("/") == ARG_PATH:
            return "arg"
        if path.startswith("/subscriptions/"):
            return "arm"
        return "other"

    def _serve(
        self, kind: str, request: Request, path: str, fault: Fault | None, applied: list[str], query_text: str = ""
    ) -> tuple[Response, str | None]:
        if kind == "openid" and request.method == "GET":
            match = _OPENID.match(request.path)
            assert match is not None
            return self.identity.openid_configuration(match.group("tenant"), self.base_url), None
        if kind == "token" and request.method == "POST":
            match = _TOKEN.match(request.path)
            assert match is not None
            if _grant_type(request) == "authorization_code":
                return self._redeem_code(request, match.group("tenant"), path, applied), self.identity.client_id
            response = self.identity.token(request, match.group("tenant"), self.base_url, fault.how if fault else None)
            if response.status == 200 and isinstance(response.payload, dict) and "access_token" in response.payload:
                self.recorder.count("tokens_issued")
            return response, self.identity.client_id
        if kind == "arg" and request.method == "POST":
            auth = self.identity.authenticate(request, self.base_url)
            if auth.error is not None:
                auth.error.headers.update(self.arg.quota.peek(auth.principal or "").headers())
                return auth.error, auth.principal
            assert auth.principal is not None

            def take_mangle() -> Fault | None:
                mangle = self.faults.take("arg", path, "mangle", query_text)
                if mangle is not None:
                    applied.append("mangle")
                return mangle

            return self.arg.handle(request, auth.principal, take_mangle, self.recorder.count), auth.principal
        if kind == "arm":
            auth = self.identity.authenticate(request, self.base_url)
            if auth.error is not None:
                auth.error.headers.update(self.arm.remaining_header(request))
                return auth.error, auth.principal
            assert auth.principal is not None
            response = self.arm.handle(request, auth.principal, self.recorder.count)
            mangle = self.faults.take("arm", path, "mangle") if response.status == 200 and isinstance(response.payload, dict) else None
            if mangle is not None:  # a resource body with its top-level fields (properties, ...) damaged
                applied.append("mangle")
                response = json_response(200, mangle_rows([response.payload], mangle)[0], response.headers)
            return response, auth.principal
        if kind == "signin":
            match = _SIGN_IN.match(request.path)
            assert match is not None
            if match.group("what").startswith("discovery") and request.method == "GET":
                return self.entra.jwks(), None
            if match.group("what").startswith("oauth2") and request.method in ("GET", "POST"):
                return self.entra.authorize(request, match.group("tenant"), self.base_url), None
        if kind == "other":
            return errors.arm_error(404, "NotFound", f"No route for '{request.path}'."), None
        return errors.arm_error(
            405,
            "MethodNotAllowed",
            f"The requested resource does not support http method '{request.method}'.",
        ), None

    def _redeem_code(self, request: Request, tenant: str, path: str, applied: list[str]) -> Response:
        if tenant.lower() != self.identity.tenant_id:
            return self.identity.unknown_tenant(tenant, self.base_url)
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("client_id", "").lower() != self.identity.client_id:
            return errors.aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id', '')}' was not found in the directory '{self.identity.tenant_id}'.",
                self.base_url,
            )
        rejected = self.identity.check_credential(form, self.base_url, f"{self.base_url}/{tenant}/oauth2/v2.0/token")
        if rejected is not None:
            return rejected
        fault = self.faults.take("token", path, "id_token")
        if fault is not None:
            applied.append(f"id_token:{fault.how}")
        response = self.entra.token(form, tenant, self.base_url, fault.how if fault else None)
        if response.status == 200:
            self.recorder.count("id_tokens_issued")
        return response

    def _fault_response(self, kind: str, fault: Fault, request: Request) -> Response:
        if fault.type == "drop":
            return Response(0, drop=True)
        headers: dict[str, str] = {}
        if kind == "arg":
            headers.update(self.arg.quota.peek(self.identity.client_id).headers())
        elif kind == "arm":
            headers.update(self.arm.remaining_header(request))
        if fault.type == "malformed":
            body = _TRUNCATED.get(kind, _TRUNCATED_AAD)
            return Response(200, body, {"Content-Type": "application/json; charset=utf-8", **headers})
        status = fault.status or 500
        headers.update(fault.headers)
        if fault.body is not None:
            if isinstance(fault.body, str):
                return Response(status, fault.body.encode(), {"Content-Type": "text/plain", **headers})
            return json_response(status, fault.body, headers)
        return self._default_fault_body(kind, status, headers)

    def _default_fault_body(self, kind: str, status: int, headers: dict[str, Any]) -> Response:
        if kind in ("token", "openid"):
            if status == 401:
                response = self.identity.bad_secret(self.base_url)
            elif status >= 500:
                response = errors.aad_error(
                    status,
                    "server_error",
                    50000,
                    "There was an error issuing a token or an issue with our sign-in service.",
                    self.base_url,
                )
            else:
                response = errors.aad_error(
                    status,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'grant_type'.",
                    self.base_url,
                )
            response.headers.update(headers)
            return response
        if status == 429:
            if kind == "arg":
                return errors.arg_rate_limited(headers)
            return errors.arm_error(429, "TooManyRequests", "The request is being throttled.", headers)
        response = errors.server_error(status)
        response.headers.update(headers)
        return response


def _grant_type(request: Request) -> str:
    return dict(parse_qsl(request.body.decode("utf-8", "replace"))).get("grant_type", "")


def _query_text(request: Request) -> str:
    """The KQL of an ARG request, for faults aimed at one query (best effort on any body)."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return ""
    query = body.get("query") if isinstance(body, dict) else None
    return query if isinstance(query, str) else ""
