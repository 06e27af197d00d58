"""POST /providers/Microsoft.ResourceGraph/resources: validation, scopes, quota, evaluation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure_emulator import errors
from azure_emulator.faults import Fault, Faults, mangle_rows
from azure_emulator.fleet import Fleet
from azure_emulator.fleet.model import TABLES
from azure_emulator.kql import CompiledQuery, KqlError, Schema, compile_query
from azure_emulator.kql import values as v
from azure_emulator.messages import Request, Response, json_response
from azure_emulator.paging import MAX_PAGE, Evaluated, InvalidSkipToken, ResultCache, slice_page
from azure_emulator.quota import SlidingWindowQuota

ARG_PATH = "/providers/microsoft.resourcegraph/resources"
API_VERSIONS = ("2021-03-01", "2022-10-01", "2024-04-01")
MAX_SUBSCRIPTIONS = 1000  # per request (troubleshoot/general.md)
READ_ACTION = "Microsoft.ResourceGraph/resources/read"
_STRING_COLUMNS = (
    "id",
    "name",
    "type",
    "tenantId",
    "kind",
    "location",
    "resourceGroup",
    "subscriptionId",
    "managedBy",
)
_DYNAMIC_COLUMNS = ("sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation")
SCHEMA: Schema = {
    **dict.fromkeys(_STRING_COLUMNS, v.STRING),
    **dict.fromkeys(_DYNAMIC_COLUMNS, v.DYNAMIC),
}
TABLE_SCHEMAS = {table: SCHEMA for table in TABLES}


@dataclass(frozen=True)
class Scope:
    key: tuple[Any, ...]  # the requested scopes, which a skip token is bound to
    subscriptions: tuple[str, ...]
    groups: frozenset[str] | None  # management groups whose tenant-level rows are visible
    limit_hit: bool


class ResourceGraph:
    def __init__(
        self,
        fleet: Fleet,
        faults: Faults,
        quota: SlidingWindowQuota,
        *,
        client_id: str,
        object_id: str,
        scope_limit: int = 10_000,
    ) -> None:
        self.fleet = fleet
        self.faults = faults
        self.quota = quota
        self.client_id = client_id
        self.object_id = object_id
        self.scope_limit = scope_limit  # subscriptions evaluated at tenant / MG scope
        self.quota_retry_after = False
        self.cache = ResultCache()
        self._compiled: dict[str, CompiledQuery] = {}
        self._lock = threading.Lock()

    def handle(
        self,
        request: Request,
        principal: str,
        take_mangle: Callable[[], Fault | None],
        count: Callable[[str, str], None],
    ) -> Response:
        decision = self.quota.take(principal)
        headers = decision.headers()
        if not decision.allowed:
            count("arg_throttled", principal)
            if self.quota_retry_after:
                headers["Retry-After"] = str(max(1, round(decision.resets_after)))
            return errors.arg_rate_limited(headers)
        count("arg_accepted", principal)
        response = self._process(request, take_mangle)
        response.headers.update(headers)
        return response

    def _process(self, request: Request, take_mangle: Callable[[], Fault | None]) -> Response:
        version = request.query.get("api-version")
        if not version:
            return errors.arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if version not in API_VERSIONS:
            return errors.arm_error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{','.join(reversed(API_VERSIONS))}'.",
            )
        if not (request.header("content-type") or "").lower().startswith("application/json"):
            # Documented real behaviour: without the JSON content type ARG answers 500.
            return errors.arm_error(
                500,
                "InternalServerError",
                f"Encountered internal server error. {errors.support_message()}",
            )
        body, problem = _parse_body(request)
        if problem is not None:
            return problem
        assert body is not None
        options: dict[str, Any] = body.get("options") or {}
        scope = self._scope(body, options)
        if isinstance(scope, Response):
            return scope
        try:
            compiled = self._compile(body["query"])
            result = self._evaluate(compiled, scope)
            page = slice_page(result, body["query"], scope.key, options)
        except KqlError as error:
            return errors.arg_bad_request([error.detail()])
        except InvalidSkipToken as error:
            return errors.arg_bad_request([{"code": "InvalidSkipToken", "message": str(error)}], invalid_query=False)
        rows = page.rows
        mangle = take_mangle()
        if mangle is not None:
            rows = mangle_rows(rows, mangle)
        names = [name for name, _ in result.columns]
        data: Any
        if options.get("resultFormat") == "table":
            data = {
                "columns": [{"name": n, "type": t} for n, t in result.columns],
                "rows": [[row.get(n) for n in names] for row in rows],
            }
        else:
            data = rows if mangle is not None else [{n: row.get(n) for n in names} for row in rows]
        payload: dict[str, Any] = {
            "totalRecords": page.total,
            "count": len(rows),
            "resultTruncated": "true" if page.truncated else "false",
            "facets": [_facet_error(f) for f in body.get("facets") or []],
        }
        if page.skip_token:
            payload["$skipToken"] = page.skip_token
        payload["data"] = data
        extra = {"x-ms-tenant-subscription-limit-hit": "true"} if scope.limit_hit else {}
        return json_response(200, payload, extra)

    def _scope(self, body: dict[str, Any], options: dict[str, Any]) -> Scope | Response:
        fleet, forbidden = self.fleet, self.faults.forbidden
        subscriptions = [s.lower() for s in body.get("subscriptions") or []]
        groups = [g.lower() for g in body.get("managementGroups") or []]
        if len(subscriptions) > MAX_SUBSCRIPTIONS:
            return errors.arg_bad_request(
                [
                    {
                        "code": "TooManySubscriptions",
                        "message": f"The request contains {len(subscriptions)} subscriptions; "
                        "at most "
                        f"{MAX_SUBSCRIPTIONS} are allowed per request. Batch the subscriptions.",
                    }
                ],
                invalid_query=False,
            )
        for sub in subscriptions:
            if sub not in fleet.subscriptions or sub in forbidden:
                return errors.authorization_failed(self.client_id, self.object_id, READ_ACTION, f"/subscriptions/{sub}")
        for group in groups:
            if group not in fleet.management_groups:
                return errors.authorization_failed(
                    self.client_id,
                    self.object_id,
                    READ_ACTION,
                    f"/providers/Microsoft.Management/managementGroups/{group}",
                )
        if subscriptions and not groups:
            return Scope(
                ("subscriptions", tuple(sorted(set(subscriptions)))),
                tuple(sorted(set(subscriptions))),
                None,
                False,
            )
        visible: set[str] = set(subscriptions)
        if groups:
            names: set[str] = set()
            for group in groups:
                visible.update(s for s in fleet.subscriptions_under(group) if s not in forbidden)
                names |= fleet.groups_under(group)
            key: tuple[Any, ...] = (
                "groups",
                tuple(sorted(set(groups))),
                tuple(sorted(set(subscriptions))),
            )
        else:
            visible = {s for s in fleet.subscriptions if s not in forbidden}
            names = set(fleet.management_groups)
            key = ("tenant",)
        ordered = tuple(sorted(visible))
        if len(ordered) > self.scope_limit:
            if not options.get("allowPartialScopes"):
                return errors.arg_bad_request(
                    [
                        {
                            "code": "TooManySubscriptionsUnderScope",
                            "message": f"The query scope contains {len(ordered)} subscriptions, "
                            f"more than the {self.scope_limit} allowed. Set "
                            "options.allowPartialScopes to query the first "
                            f"{self.scope_limit}.",
                        }
                    ],
                    invalid_query=False,
                )
            return Scope(key, ordered[: self.scope_limit], frozenset(names), True)
        return Scope(key, ordered, frozenset(names), False)

    def _compile(self, text: str) -> CompiledQuery:
        with self._lock:
            compiled = self._compiled.get(text)
        if compiled is None:
            compiled = compile_query(text, TABLE_SCHEMAS)
            with self._lock:
                if len(self._compiled) > 512:
                    self._compiled.clear()
                self._compiled[text] = compiled
        return compiled

    def _evaluate(self, compiled: CompiledQuery, scope: Scope) -> Evaluated:
        fleet = self.fleet
        version = fleet.version  # read once: the rows below belong to this version
        key = (compiled.text, scope.subscriptions, scope.groups)

        def compute() -> Evaluated:
            rows = fleet.rows(compiled.table, scope.subscriptions, tenant_rows=scope.groups is not None)
            if scope.groups is not None:
                rows = [r for r in rows if r.get("subscriptionId") or r["name"].lower() in scope.groups]
            return Evaluated(compiled.columns, compiled.run(rows), compiled.has_take)

        return self.cache.get_or_compute(version, key, compute)


def _facet_error(facet: Any) -> dict[str, Any]:
    expression = facet.get("expression", "") if isinstance(facet, dict) else ""
    return {
        "expression": expression,
        "resultType": "FacetError",
        "errors": [{"code": "NotSupported", "message": "The emulator does not evaluate facets."}],
    }


def _parse_body(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    def invalid(reason: str) -> tuple[None, Response]:
        return None, errors.arm_error(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{reason}'.",
        )

    try:
        body = request.json()
    except ValueError as error:
        return invalid(f"Invalid JSON: {error}")
    if not isinstance(body, dict):
        return invalid("The request body must be a JSON object.")
    if not isinstance(body.get("query"), str):
        return invalid("Required property 'query' not found in JSON. Path ''.")
    for name in ("subscriptions", "managementGroups"):
        value = body.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            return invalid(f"Property '{name}' must be an array of strings.")
    options = body.get("options")
    if options is None:
        return body, None
    if not isinstance(options, dict):
        return invalid("Property 'options' must be an object.")
    for name in ("$top", "$skip"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return invalid(f"Property '{name}' must be an integer.")
    top, skip = options.get("$top"), options.get("$skip")
    if top is not None and not 1 <= top <= MAX_PAGE:
        return None, errors.arg_bad_request(
            [{"code": "InvalidTop", "message": f"'$top' must be between 1 and {MAX_PAGE}."}],
            invalid_query=False,
        )
    if skip is not None and skip < 0:
        return None, errors.arg_bad_request(
            [{"code": "InvalidSkip", "message": "'$skip' must be 0 or greater."}],
            invalid_query=False,
        )
    if options.get("resultFormat") not in (None, "table", "objectArray"):
        return invalid("Property 'resultFormat' must be 'table' or 'objectArray'.")
    if options.get("$skipToken") is not None and not isinstance(options["$skipToken"], str):
        return invalid("Property '$skipToken' must be a string.")
    return body, None
