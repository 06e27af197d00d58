"""The ARG REST protocol over raw HTTP: paging, formats, validation, scopes."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from azure_emulator import Emulator

from .helpers import ARG_URL, query, subscriptions

CLUSTERS_QUERY = "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | project id, name"


def ids_of(fleet_rows: list[dict[str, Any]]) -> list[str]:
    return sorted((r["id"] for r in fleet_rows), key=str.lower)


def fleet_clusters(emu: Emulator, subs: list[str] | None = None) -> list[dict[str, Any]]:
    wanted = {s.lower() for s in subs} if subs is not None else None
    return [c for c in emu.fleet.clusters() if wanted is None or c["subscriptionId"] in wanted]


def test_it_pages_with_skip_token_and_rejects_a_token_for_another_query(http: requests.Session, emu: Emulator, token: str) -> None:
    subs = subscriptions(emu)
    first = query(http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY, "options": {"$top": 40}}).json()
    assert (first["count"], first["totalRecords"], first["resultTruncated"]) == (40, 150, "false")
    seen = [r["id"] for r in first["data"]]
    skip = first["$skipToken"]
    while skip:
        page = query(http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY, "options": {"$skipToken": skip}}).json()
        seen += [r["id"] for r in page["data"]]
        skip = page.get("$skipToken")
    assert seen == ids_of(fleet_clusters(emu))  # every cluster once, in lower-case id order
    other_query = query(
        http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY + ", location", "options": {"$skipToken": first["$skipToken"]}}
    )
    other_scope = query(
        http, emu, token, {"subscriptions": subs[:1], "query": CLUSTERS_QUERY, "options": {"$skipToken": first["$skipToken"]}}
    )
    for response in (other_query, other_scope):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "BadRequest"
        assert error["details"][0]["code"] == "InvalidSkipToken"


def test_it_lets_top_and_skip_override_the_skip_token(http: requests.Session, emu: Emulator, token: str) -> None:
    subs = subscriptions(emu)
    first = query(http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY, "options": {"$top": 10}}).json()
    second = query(
        http,
        emu,
        token,
        {"subscriptions": subs, "query": CLUSTERS_QUERY, "options": {"$skipToken": first["$skipToken"], "$top": 5, "$skip": 100}},
    ).json()
    expected = ids_of(fleet_clusters(emu))[100:105]
    assert [r["id"] for r in second["data"]] == expected
    third = query(
        http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY, "options": {"$skipToken": second["$skipToken"]}}
    ).json()
    assert [r["id"] for r in third["data"]] == ids_of(fleet_clusters(emu))[105:110]


def test_it_truncates_without_skip_token_when_id_is_not_projected(http: requests.Session, emu: Emulator, token: str) -> None:
    body = {
        "subscriptions": subscriptions(emu),
        "query": "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | project name",
        "options": {"$top": 20},
    }
    page = query(http, emu, token, body).json()
    assert (page["resultTruncated"], page["count"], page["totalRecords"]) == ("true", 20, 150)
    assert "$skipToken" not in page
    body["options"] = {"$top": 1000}
    assert query(http, emu, token, body).json()["resultTruncated"] == "false"


def test_it_skips_rows_and_ignores_skip_when_the_query_takes(http: requests.Session, emu: Emulator, token: str) -> None:
    subs = subscriptions(emu)
    skipped = query(http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY, "options": {"$top": 3, "$skip": 7}}).json()
    assert [r["id"] for r in skipped["data"]] == ids_of(fleet_clusters(emu))[7:10]
    taken = query(http, emu, token, {"subscriptions": subs, "query": CLUSTERS_QUERY + " | take 5", "options": {"$skip": 3}}).json()
    assert [r["id"] for r in taken["data"]] == ids_of(fleet_clusters(emu))[:5]
    assert taken["totalRecords"] == 5


def test_it_keeps_the_query_order_when_the_query_orders(http: requests.Session, emu: Emulator, token: str) -> None:
    page = query(
        http, emu, token, {"subscriptions": subscriptions(emu), "query": CLUSTERS_QUERY + " | order by name asc", "options": {"$top": 1000}}
    ).json()
    names = [r["name"] for r in page["data"]]
    assert names == sorted(names)


def test_it_answers_in_table_format_with_typed_columns(http: requests.Session, emu: Emulator, token: str) -> None:
    text = (
        "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | project id, "
        "nodes = toint(properties.totalNodeCount), props = properties, wi = tobool(properties.securityProfile."
        "workloadIdentity.enabled), seen = todatetime(properties.lastConnectivityTime), n = 1.5"
    )
    page = query(
        http, emu, token, {"subscriptions": subscriptions(emu), "query": text, "options": {"$top": 5, "resultFormat": "table"}}
    ).json()
    assert page["data"]["columns"] == [
        {"name": "id", "type": "string"},
        {"name": "nodes", "type": "integer"},
        {"name": "props", "type": "object"},
        {"name": "wi", "type": "boolean"},
        {"name": "seen", "type": "datetime"},
        {"name": "n", "type": "number"},
    ]
    assert len(page["data"]["rows"]) == 5 and all(len(row) == 6 for row in page["data"]["rows"])
    assert all(row[4] is None or row[4].endswith("Z") for row in page["data"]["rows"])


def test_it_answers_500_without_a_json_content_type(http: requests.Session, emu: Emulator, token: str) -> None:
    response = http.post(
        emu.base_url + ARG_URL, data=b'{"query": "resources"}', headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalServerError"


def test_it_rejects_bodies_without_a_query_or_with_bad_options(http: requests.Session, emu: Emulator, token: str) -> None:
    assert query(http, emu, token, {"subscriptions": subscriptions(emu)}).json()["error"]["code"] == ("InvalidRequestContent")
    for options, detail in (({"$top": 0}, "InvalidTop"), ({"$top": 1001}, "InvalidTop"), ({"$skip": -1}, "InvalidSkip")):
        response = query(http, emu, token, {"query": "resources", "options": options})
        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["code"] == detail
    bad_format = query(http, emu, token, {"query": "resources", "options": {"resultFormat": "csv"}})
    assert bad_format.json()["error"]["code"] == "InvalidRequestContent"


def test_it_accepts_the_documented_api_versions_only(http: requests.Session, emu: Emulator, token: str) -> None:
    body = {"query": "resourcecontainers | take 1"}
    for version in ("2021-03-01", "2022-10-01", "2024-04-01"):
        url = f"/providers/Microsoft.ResourceGraph/resources?api-version={version}"
        assert query(http, emu, token, body, url=url).status_code == 200
    bad = query(http, emu, token, body, url="/providers/Microsoft.ResourceGraph/resources?api-version=2019-04-01")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "InvalidApiVersionParameter"
    missing = query(http, emu, token, body, url="/providers/Microsoft.ResourceGraph/resources")
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


def test_it_answers_the_documented_parser_failure_for_an_unsupported_operator(http: requests.Session, emu: Emulator, token: str) -> None:
    response = query(http, emu, token, {"query": "resources | mv-apply p = properties on (take 1)"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"].startswith("Please provide below info when asking for support: timestamp = ")
    assert "correlationId = " in error["message"]
    assert error["details"][0] == {
        "code": "InvalidQuery",
        "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service "
        "and fix the error before retrying.",
    }
    assert error["details"][1] == {
        "code": "ParserFailure",
        "message": "ParserFailure",
        "line": 1,
        "characterPositionInLine": 12,
        "token": "mv-apply",
        "expectedToken": "where, project, extend, order by, sort by, take, limit",
    }


def test_it_answers_400_for_unknown_columns_and_tables(http: requests.Session, emu: Emulator, token: str) -> None:
    column = query(http, emu, token, {"query": "resources | project id, nosuchcolumn"}).json()["error"]
    assert [d["code"] for d in column["details"]] == ["InvalidQuery", "UnknownColumn"]
    table = query(http, emu, token, {"query": "extensibilityresources"}).json()["error"]
    assert [d["code"] for d in table["details"]] == ["InvalidQuery", "UnknownTable"]


def test_it_scopes_by_subscriptions_case_insensitively(http: requests.Session, emu: Emulator, token: str) -> None:
    sub = subscriptions(emu)[1]
    page = query(http, emu, token, {"subscriptions": [sub.upper()], "query": CLUSTERS_QUERY, "options": {"$top": 1000}}).json()
    assert [r["id"] for r in page["data"]] == ids_of(fleet_clusters(emu, [sub]))
    assert page["totalRecords"] == 50


def test_it_scopes_by_management_group_recursively(http: requests.Session, emu: Emulator, token: str) -> None:
    landing = emu.fleet.subscriptions_under("contoso-landingzones")
    hub = emu.fleet.subscriptions_under("contoso-platform")
    assert landing and hub and not set(landing) & set(hub)
    assert "contoso-edge-retail" in {emu.fleet.subscriptions[s].management_group for s in landing}
    page = query(
        http, emu, token, {"managementGroups": ["CONTOSO-LANDINGZONES"], "query": CLUSTERS_QUERY, "options": {"$top": 1000}}
    ).json()
    assert [r["id"] for r in page["data"]] == ids_of(fleet_clusters(emu, landing))
    groups = query(
        http,
        emu,
        token,
        {
            "managementGroups": ["contoso-edge"],
            "query": "resourcecontainers | where type =~ 'microsoft.management/managementgroups' | project id, name",
        },
    ).json()
    assert sorted(r["name"] for r in groups["data"]) == ["contoso-edge", "contoso-edge-factory", "contoso-edge-retail"]


def test_it_reads_every_readable_subscription_at_tenant_scope(http: requests.Session, emu: Emulator, token: str) -> None:
    forbidden = subscriptions(emu)[0]
    emu.faults.forbid_subscriptions([forbidden])
    page = query(http, emu, token, {"query": "resourcecontainers | project id, name, type", "options": {"$top": 1000}}).json()
    subs = {r["id"].split("/")[2] for r in page["data"] if r["type"] == "microsoft.resources/subscriptions"}
    assert subs == set(subscriptions(emu)) - {forbidden}
    groups = [r for r in page["data"] if r["type"] == "microsoft.management/managementgroups"]
    assert len(groups) == len(emu.fleet.management_groups)


def test_it_forbids_unknown_or_unreadable_scopes(http: requests.Session, emu: Emulator, token: str) -> None:
    stranger = str(uuid.uuid4())
    response = query(http, emu, token, {"subscriptions": [subscriptions(emu)[0], stranger], "query": CLUSTERS_QUERY})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "AuthorizationFailed"
    assert f"over scope '/subscriptions/{stranger}'" in error["message"]
    assert f"The client '{emu.client_id}' with object id '" in error["message"]
    unknown_group = query(http, emu, token, {"managementGroups": ["nope"], "query": CLUSTERS_QUERY})
    assert unknown_group.status_code == 403


def test_it_rejects_more_than_1000_subscriptions(http: requests.Session, emu: Emulator, token: str) -> None:
    response = query(http, emu, token, {"subscriptions": [str(uuid.uuid4()) for _ in range(1001)], "query": CLUSTERS_QUERY})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["details"][0]["code"] == "TooManySubscriptions"
    assert "x-ms-user-quota-remaining" in response.headers


def test_it_limits_large_tenant_scopes_unless_partial_scopes_are_allowed(tmp_path: Any) -> None:
    with Emulator(clusters=150, seed=2, quota=None, workdir=tmp_path, scope_limit=2) as small:
        session = requests.Session()
        session.trust_env = False
        session.verify = small.ca_file
        from .helpers import fetch_token

        token = fetch_token(session, small).json()["access_token"]
        refused = query(session, small, token, {"query": CLUSTERS_QUERY})
        assert refused.status_code == 400
        assert refused.json()["error"]["details"][0]["code"] == "TooManySubscriptionsUnderScope"
        partial = query(session, small, token, {"query": CLUSTERS_QUERY, "options": {"allowPartialScopes": True, "$top": 1000}})
        assert partial.headers["x-ms-tenant-subscription-limit-hit"] == "true"
        assert partial.json()["totalRecords"] == 100  # the first two of three subscriptions


def test_it_reports_facets_it_cannot_evaluate_as_facet_errors(http: requests.Session, emu: Emulator, token: str) -> None:
    page = query(http, emu, token, {"query": CLUSTERS_QUERY, "facets": [{"expression": "location"}]}).json()
    assert page["facets"][0]["expression"] == "location"
    assert page["facets"][0]["resultType"] == "FacetError"


def test_it_sees_fleet_mutations_despite_the_result_cache(http: requests.Session, emu: Emulator, token: str) -> None:
    cluster = next(c for c in emu.fleet.clusters() if c["properties"].get("connectivityStatus") == "Connected")
    text = (
        "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | where properties.connectivityStatus == 'Offline' | project id"
    )
    body = {"subscriptions": [cluster["subscriptionId"]], "query": text, "options": {"$top": 1000}}
    before = {r["id"] for r in query(http, emu, token, body).json()["data"]}
    assert cluster["id"] not in before
    emu.fleet.update_cluster(cluster["id"], {"properties": {"connectivityStatus": "Offline"}})
    try:
        assert cluster["id"] in {r["id"] for r in query(http, emu, token, body).json()["data"]}
        emu.fleet.remove_cluster(cluster["id"])
        assert cluster["id"] not in {r["id"] for r in query(http, emu, token, body).json()["data"]}
    finally:
        emu.fleet.restore_cluster(cluster["id"])
        emu.fleet.update_cluster(cluster["id"], {"properties": {"connectivityStatus": "Connected"}})
