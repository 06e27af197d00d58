"""Every Resource Graph query the product sends passes Microsoft's own Kusto parser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from posture.collect.queries import ALL_QUERIES, BATCH_QUERIES

ROOT = Path(__file__).resolve().parents[2]
LINT = ROOT / "scripts" / "kql-lint.js"


def lint(*queries: str) -> tuple[int, list[dict]]:
    node = shutil.which("node")
    assert node, "Node.js is required to lint KQL (make test installs the parser with npm ci)"
    assert (ROOT / "node_modules" / "@kusto" / "language-service-next").exists(), "run `npm ci` (make test does)"
    result = subprocess.run([node, str(LINT), *queries], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def test_every_query_is_valid_kql_over_the_resource_graph_tables() -> None:
    code, reports = lint(*(q.text for q in ALL_QUERIES))
    assert code == 0, [r for r in reports if not r["ok"]]
    assert len(reports) == len(ALL_QUERIES)
    for query, report in zip(ALL_QUERIES, reports, strict=True):
        assert report["diagnostics"] == [], query.name
        assert report["columns"][0] == "id:string", f"{query.name} must project id first: ARG pages by it"


def test_the_linter_rejects_what_resource_graph_would_reject() -> None:
    code, reports = lint("resources | projct id", "resources | project id, nosuchcolumn")
    assert code == 1
    assert [r["ok"] for r in reports] == [False, False]


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_queries_are_constants_scoped_by_request_not_by_text(query) -> None:
    # Scopes travel in the request body; nothing from Azure or a user is ever put into KQL.
    assert "{" not in query.text and "subscriptionId ==" not in query.text
    assert query.text.split("\n", 1)[0].strip() == query.table


def test_a_batch_reads_every_table_the_controls_need() -> None:
    assert {q.table for q in BATCH_QUERIES} == {"resources", "kubernetesconfigurationresources", "policyresources", "securityresources"}
