"""Requests and responses checked against the official ARG OpenAPI spec and examples.

resourcegraph.json, ResourcesFirstPageQuery.json and ResourcesNextPageQuery.json are verbatim
copies of Azure/azure-rest-api-specs (stable/2022-10-01), kept here so a clean clone is
self-contained. Swagger 2.0 schemas are read as JSON Schema draft 4 with two translations:
`x-ms-*` and `discriminator` are dropped, and a bare `type: object` (no properties) means "any
value", as autorest reads it (QueryResponse.data is an array in every official example).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, ResultFormat

from azure_emulator import Emulator
from posture.collect import queries

from .helpers import query, subscriptions

HERE = Path(__file__).parent


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _translate(v) for k, v in node.items() if not k.startswith("x-ms-") and k != "discriminator"}
    if out.get("type") == "object" and not {"properties", "additionalProperties", "allOf"} & set(out):
        del out["type"]
    return out


@cache
def _definitions() -> dict[str, Any]:
    spec = json.loads((HERE / "resourcegraph.json").read_text())
    return _translate(spec["definitions"])  # type: ignore[no-any-return]


def validate(instance: Any, definition: str) -> None:
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "definitions": _definitions(), "$ref": f"#/definitions/{definition}"}
    jsonschema.Draft4Validator(schema).validate(instance)


def example(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text())  # type: ignore[no-any-return]


def test_the_translated_schema_accepts_the_official_examples_and_still_rejects_wrong_types() -> None:
    for name in ("ResourcesFirstPageQuery.json", "ResourcesNextPageQuery.json"):
        validate(example(name)["parameters"]["query"], "QueryRequest")
        validate(example(name)["responses"]["200"]["body"], "QueryResponse")
    body = example("ResourcesFirstPageQuery.json")["responses"]["200"]["body"]
    for broken in ({**body, "resultTruncated": False}, {**body, "count": "3"}, {k: v for k, v in body.items() if k != "totalRecords"}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, "QueryResponse")
    with pytest.raises(jsonschema.ValidationError):
        validate({"query": "x", "options": {"$top": 0}}, "QueryRequest")


def test_sdk_requests_and_emulator_responses_conform_to_the_official_spec(
    http: requests.Session, emu: Emulator, graph: ResourceGraphClient, token: str
) -> None:
    subs = subscriptions(emu)
    for q in queries.ALL_QUERIES:
        first = graph.resources(QueryRequest(subscriptions=subs, query=q.text, options=QueryRequestOptions(top=50)))
        if first.skip_token:
            graph.resources(QueryRequest(subscriptions=subs, query=q.text, options=QueryRequestOptions(skip_token=first.skip_token)))
    graph.resources(
        QueryRequest(
            management_groups=["contoso-landingzones"],
            query=queries.CLUSTERS.text,
            options=QueryRequestOptions(result_format=ResultFormat.TABLE, top=3),
        )
    )
    with pytest.raises(HttpResponseError):
        graph.resources(QueryRequest(query="resources | summarize count()"))
    emu.faults.forbid_subscriptions([subs[0]])
    with pytest.raises(HttpResponseError):
        graph.resources(QueryRequest(subscriptions=subs, query=queries.CLUSTERS.text))
    emu.set_quota((1, 60.0))
    for _ in range(2):
        query(http, emu, token, {"query": "resources | take 1"})
    http.post(
        f"{emu.base_url}/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01", json={"query": "resources"}
    )  # no Authorization header

    log = emu.requests("arg")
    statuses = {entry["status"] for entry in log}
    assert statuses == {200, 400, 401, 403, 429}
    for entry in log:
        validate(entry["body"], "QueryRequest")
        if entry["status"] == 200:
            validate(entry["response"], "QueryResponse")
            data = entry["response"]["data"]
            if isinstance(data, dict):
                validate(data, "Table")
            else:
                assert isinstance(data, list) and all(isinstance(row, dict) for row in data)
            for facet in entry["response"]["facets"]:
                validate(facet, "Facet")
        else:
            validate(entry["response"], "ErrorResponse")


def test_it_answers_the_official_first_and_next_page_examples_in_the_same_shape(http: requests.Session, emu: Emulator, token: str) -> None:
    first_example, next_example = example("ResourcesFirstPageQuery.json"), example("ResourcesNextPageQuery.json")
    request = json.loads(json.dumps(first_example["parameters"]["query"]).replace("'test'", "'arc'"))
    request["subscriptions"] = [subscriptions(emu)[0]]
    first = query(http, emu, token, request).json()
    expected = first_example["responses"]["200"]["body"]
    assert list(first) == list(expected)  # totalRecords, count, resultTruncated, facets, $skipToken, data
    assert first["count"] == 3 and first["totalRecords"] > 3 and first["facets"] == []
    assert [list(row) for row in first["data"]] == [list(row) for row in expected["data"]]
    assert all(row["type"] == row["type"].lower() and " " not in row["location"] for row in first["data"])

    follow_up = {**{k: v for k, v in request.items() if k != "options"}, "options": {"$skipToken": first["$skipToken"]}}
    assert set(follow_up["options"]) == set(next_example["parameters"]["query"]["options"])
    second = query(http, emu, token, follow_up).json()
    next_expected = next_example["responses"]["200"]["body"]
    assert set(second) - {"$skipToken"} == set(next_expected) - {"$skipToken"}
    assert second["totalRecords"] == first["totalRecords"]
    assert not {r["id"] for r in second["data"]} & {r["id"] for r in first["data"]}
