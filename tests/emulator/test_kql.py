"""KQL semantics of the evaluator, on hand-made rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from azure_emulator.arg import TABLE_SCHEMAS
from azure_emulator.kql import KqlError, compile_query

ROWS: list[dict[str, Any]] = [
    {
        "id": "/a",
        "name": "Alpha",
        "type": "microsoft.kubernetes/connectedclusters",
        "kind": "ProvisionedCluster",
        "properties": {
            "connectivityStatus": "Connected",
            "gateway": {"enabled": True},
            "count": 3,
            "flag": "true",
            "subnets": [{"name": "s0"}],
            "when": "2026-01-02T03:04:05Z",
        },
    },
    {
        "id": "/b",
        "name": "beta",
        "type": "Microsoft.Kubernetes/connectedClusters",
        "kind": None,
        "properties": {
            "connectivityStatus": "offline",
            "gateway": None,
            "count": 0,
            "flag": "yes",
            "ExtensionType": "",
            "extensionType": "microsoft.flux",
            "when": "not a date",
        },
    },
    {
        "id": "/c",
        "name": "gamma-edge",
        "type": "microsoft.hybridcompute/gateways",
        "properties": {"ExtensionType": "Microsoft.PolicyInsights", "when": None},
    },
]


def run(text: str, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return compile_query(text, TABLE_SCHEMAS).run(ROWS if rows is None else rows)


def names(text: str) -> list[str]:
    return [row["name"] for row in run(text)]


def test_it_compares_strings_case_sensitively_with_double_equals_and_not_with_tilde() -> None:
    assert names("resources | where type == 'microsoft.kubernetes/connectedclusters'") == ["Alpha"]
    assert names("resources | where type =~ 'MICROSOFT.KUBERNETES/CONNECTEDCLUSTERS'") == ["Alpha", "beta"]
    assert names("resources | where name !~ 'ALPHA'") == ["beta", "gamma-edge"]
    assert names("resources | where name != 'Alpha'") == ["beta", "gamma-edge"]


def test_it_treats_comparisons_with_null_as_false() -> None:
    assert names("resources | where kind == 'ProvisionedCluster'") == ["Alpha"]
    assert names("resources | where kind != 'ProvisionedCluster'") == []  # beta has null, gamma none
    assert names("resources | where properties.gateway.enabled == true") == ["Alpha"]
    assert names("resources | where properties.gateway.enabled != true") == []
    assert names("resources | where not(properties.gateway.enabled == true)") == ["beta", "gamma-edge"]


def test_it_turns_missing_values_into_empty_strings_with_tostring() -> None:
    rows = run(
        "resources | project id, status = tostring(properties.connectivityStatus), "
        "gw = tostring(properties.gateway.enabled), k = tostring(kind), obj = tostring(properties.subnets)"
    )
    assert [r["status"] for r in rows] == ["Connected", "offline", ""]
    assert [r["gw"] for r in rows] == ["true", "", ""]
    assert [r["k"] for r in rows] == ["ProvisionedCluster", "", ""]
    assert rows[0]["obj"] == '[{"name":"s0"}]'


def test_it_reads_dotted_paths_bracket_keys_and_indexes_with_null_for_missing() -> None:
    rows = run(
        "resources | project id, properties.gateway.enabled, properties['connectivityStatus'], "
        "properties.subnets[0].name, properties.nothing.deeper, ['kind']"
    )
    assert list(rows[0]) == [
        "id",
        "properties_gateway_enabled",
        "properties_connectivityStatus",
        "properties_subnets_0_name",
        "properties_nothing_deeper",
        "kind",
    ]
    assert rows[0]["properties_gateway_enabled"] is True
    assert rows[0]["properties_subnets_0_name"] == "s0"
    assert rows[1]["properties_gateway_enabled"] is None
    assert all(r["properties_nothing_deeper"] is None for r in rows)


def test_it_names_unnamed_expressions_column1_and_keeps_bare_column_names() -> None:
    compiled = compile_query("resources | project name, tolower(name), toupper(name), type", TABLE_SCHEMAS)
    assert compiled.column_names == ("name", "Column1", "Column2", "type")


def test_it_coalesces_to_the_first_non_null_non_empty_value() -> None:
    rows = run(
        "resources | project t = tolower(tostring(coalesce(properties.ExtensionType, "
        "properties.extensionType))), n = coalesce(properties.missing, properties.alsoMissing)"
    )
    assert [r["t"] for r in rows] == ["", "microsoft.flux", "microsoft.policyinsights"]
    assert [r["n"] for r in rows] == [None, None, None]


def test_it_evaluates_in_and_in_tilde_and_their_negations() -> None:
    assert names("resources | where name in ('Alpha', 'BETA')") == ["Alpha"]
    assert names("resources | where name in~ ('alpha', 'BETA')") == ["Alpha", "beta"]
    assert names("resources | where name !in ('Alpha')") == ["beta", "gamma-edge"]
    assert names("resources | where name !in~ ('ALPHA', 'beta')") == ["gamma-edge"]
    assert names("resources | where kind in~ ('provisionedcluster')") == ["Alpha"]
    assert names("resources | where kind !in ('x')") == ["Alpha"]  # null never matches


def test_it_matches_contains_case_insensitively_and_has_on_whole_terms() -> None:
    assert names("resources | where name contains 'ALP'") == ["Alpha"]
    assert names("resources | where name !contains 'a'") == []
    assert names("resources | where properties.missing !contains 'x'") == ["Alpha", "beta", "gamma-edge"]
    assert names("resources | where name has 'EDGE'") == ["gamma-edge"]
    assert names("resources | where name has 'edg'") == []


def test_it_converts_with_tobool_toint_and_todatetime() -> None:
    rows = run(
        "resources | project b = tobool(properties.flag), g = tobool(properties.count), "
        "i = toint(properties.count), d = todatetime(properties.when)"
    )
    assert [r["b"] for r in rows] == [True, None, None]  # "yes" is not a bool
    assert [r["g"] for r in rows] == [True, False, None]
    assert [r["i"] for r in rows] == [3, 0, None]
    assert rows[0]["d"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows[1]["d"] is None and rows[2]["d"] is None


def test_it_tells_empty_from_null() -> None:
    rows = run(
        "resources | project e = isempty(kind), ne = isnotempty(properties.ExtensionType), "
        "n = isnull(kind), nn = isnotnull(properties.ExtensionType)"
    )
    assert [r["e"] for r in rows] == [False, True, True]
    assert [r["ne"] for r in rows] == [False, False, True]
    assert [r["n"] for r in rows] == [False, True, True]
    assert [r["nn"] for r in rows] == [False, True, True]


def test_it_applies_and_or_parentheses_with_three_valued_logic() -> None:
    text = "resources | where (type =~ 'microsoft.hybridcompute/gateways' or properties.gateway.enabled == true) and name != 'nobody'"
    assert names(text) == ["Alpha", "gamma-edge"]


def test_it_orders_sorts_takes_and_extends() -> None:
    assert names("resources | order by name asc") == ["Alpha", "beta", "gamma-edge"]  # ordinal
    assert names("resources | sort by name") == ["gamma-edge", "beta", "Alpha"]  # desc by default
    assert names("resources | order by kind asc, name desc") == ["gamma-edge", "beta", "Alpha"]
    assert names("resources | take 2") == ["Alpha", "beta"]
    assert names("resources | limit 1") == ["Alpha"]
    rows = run("resources | extend lower = tolower(name), name = toupper(name) | project name, lower")
    assert rows[0] == {"name": "ALPHA", "lower": "alpha"}


@pytest.mark.parametrize(
    ("text", "token", "column"),
    [
        ("resources | mv-apply x = properties on (take 1)", "mv-apply", 12),
        ("resources | summarize count() by type", "summarize", 12),
        ("resources | join kind=inner (resources) on id", "join", 12),
        ("resources | where strlen(name) > 1", "strlen", 18),
        ("resources | where (name == 'a'", "<EOF>", 30),
        ("resources | project tostring(name, id)", ",", 33),
        ("resources\n| where name = 'x'", "=", 13),
    ],
)
def test_it_reports_unsupported_syntax_as_a_parser_failure(text: str, token: str, column: int) -> None:
    with pytest.raises(KqlError) as caught:
        compile_query(text, TABLE_SCHEMAS)
    detail = caught.value.detail()
    assert detail["code"] == "ParserFailure"
    assert (detail["token"], detail["characterPositionInLine"]) == (token, column)
    assert detail["line"] == text[: text.find(token) if token != "<EOF>" else len(text)].count("\n") + 1


def test_it_reports_unknown_columns_and_tables() -> None:
    with pytest.raises(KqlError) as column:
        compile_query("resources | project id, Properties", TABLE_SCHEMAS)  # names are case-sensitive
    assert (column.value.code, column.value.token) == ("UnknownColumn", "Properties")
    with pytest.raises(KqlError) as after_project:
        compile_query("resources | project id | where name == 'x'", TABLE_SCHEMAS)
    assert after_project.value.token == "name"
    with pytest.raises(KqlError) as table:
        compile_query("extensibilityresources | take 1", TABLE_SCHEMAS)
    assert table.value.code == "UnknownTable"
