"""Findings and scorecards of a scanned emulator fleet, checked cell by cell against the
database and the catalog, in CSV, JSON Lines and Excel."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import openpyxl
import pytest

from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.evaluate.scoring import SECTION_CONTROLS
from posture.exports import writers
from posture.exports.cells import canonical_json
from posture.exports.rows import FINDINGS_COLUMNS, SCORECARD_COLUMNS
from posture.models import Cluster, ControlResult, Status
from posture.read.clusters import cluster_list
from tests.posture.exports_fleet import FLEET_CLUSTERS, ScannedFleet, build, read_csv, read_jsonl, read_xlsx, scan_fleet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet(make_emulator: Any, emulator_scope: Any) -> ScannedFleet:
    return scan_fleet(make_emulator, emulator_scope)


def by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["arm_id"], row["control"]): row for row in rows}


def expected_finding(result: ControlResult) -> dict[str, str]:
    """A finding's cells, built straight from the database row and the catalog."""
    cluster, control = result.cluster, CONTROLS_BY_ID[result.control]
    attestation, exception = result.attestation, result.exception
    return {
        "cluster": cluster.name,
        "arm_id": cluster.arm_id,
        "subscription_id": cluster.subscription_id,
        "resource_group": cluster.resource_group,
        "location": cluster.location,
        "tags": "; ".join(f"{k}={v}" for k, v in sorted(cluster.tags.items())),
        "control": control.id,
        "title": control.title,
        "severity": control.severity,
        "status": result.status,
        "reason": result.reason,
        "detail": result.detail,
        "references_printed": "; ".join(ref.label() for ref in control.printed),
        "attestation_id": str(attestation.pk) if attestation else "",
        "attested_by": attestation.attested_by.username if attestation else "",
        "attestation_statement": attestation.statement if attestation else "",
        "exception_id": str(exception.pk) if exception else "",
        "exception_requested_by": exception.requested_by.username if exception else "",
        "exception_approved_by": exception.decided_by.username if exception else "",
        "exception_owner": exception.owner if exception else "",
        "exception_justification": exception.justification if exception else "",
        "scan_id": str(cluster.facts_scan_id),
    }


def in_csv(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") and value else value


def assert_finding(row: dict[str, Any], result: ControlResult) -> None:
    for column, value in expected_finding(result).items():
        assert row[column] == in_csv(value), column
    assert json.loads(row["evidence"]) == result.evidence
    assert dt.datetime.fromisoformat(row["since"]) == result.since
    governed = result.attestation or result.exception
    until = "attestation_expires_at" if result.attestation else "exception_expires_at"
    if governed:
        assert dt.datetime.fromisoformat(row[until]) == governed.expires_at


def test_findings_csv_holds_one_row_per_cluster_and_control_matching_the_database(fleet: ScannedFleet) -> None:
    data, export = build("findings", "csv")
    rows = read_csv(data)
    assert list(rows[0]) == list(FINDINGS_COLUMNS)
    assert len(rows) == export.rows == FLEET_CLUSTERS * len(CONTROLS)
    found = by_key(rows)
    chosen = [
        ControlResult.objects.get(attestation=fleet.attestation),
        ControlResult.objects.filter(exception=fleet.exception).first(),
        ControlResult.objects.filter(status=Status.PASS).order_by("cluster__name").first(),
        ControlResult.objects.filter(cluster__name__startswith="test-").order_by("cluster__name").first(),
    ]
    for result in chosen:
        assert result is not None
        assert_finding(found[(result.cluster.arm_id, result.control)], result)
    attested = found[(fleet.attestation.cluster.arm_id, fleet.attestation.control)]
    assert (attested["status"], attested["attested_by"]) == (Status.ATTESTED, "anna-analyst")
    excepted = ControlResult.objects.filter(exception=fleet.exception).first()
    assert found[(excepted.cluster.arm_id, excepted.control)]["exception_approved_by"] == "adam-admin"


def test_closer_references_print_short_framework_names_and_sections(fleet: ScannedFleet) -> None:
    rows = read_csv(build("findings", "csv", control="ARC-NP-01")[0])
    assert {row["references_closer"] for row in rows} == {
        "CIS 5.3.1; NIST 4.3.3; NSA/CISA checklist-1; NSA/CISA network-policies; OWASP network-policies"
    }


def test_findings_rows_follow_cluster_name_then_catalog_order(fleet: ScannedFleet) -> None:
    rows = read_csv(build("findings", "csv")[0])
    names = list(Cluster.objects.order_by("name", "pk").values_list("arm_id", flat=True))
    order = [c.id for c in CONTROLS]
    assert [(r["arm_id"], r["control"]) for r in rows] == [(arm_id, control) for arm_id in names for control in order]


def test_json_lines_and_excel_hold_the_same_findings_as_csv(fleet: ScannedFleet) -> None:
    from_csv = read_csv(build("findings", "csv")[0])
    from_jsonl = read_jsonl(build("findings", "jsonl")[0])
    from_xlsx = read_xlsx(build("findings", "xlsx")[0])
    assert len(from_csv) == len(from_jsonl) == len(from_xlsx) == FLEET_CLUSTERS * len(CONTROLS)
    for csv_row, json_row, xlsx_row in zip(from_csv, from_jsonl, from_xlsx, strict=True):
        assert list(json_row) == list(FINDINGS_COLUMNS)
        as_text = {k: "" if v is None else str(v) for k, v in json_row.items()}
        # CSV and Excel neutralise formula-like text; JSON keeps it exact.
        assert csv_row == {k: in_csv(v) for k, v in as_text.items()}
        assert {k: "" if v is None else str(v) for k, v in xlsx_row.items()} == csv_row


def test_status_filter_keeps_only_findings_in_those_statuses(fleet: ScannedFleet) -> None:
    rows = read_csv(build("findings", "csv", status="fail,excepted")[0])
    expected = ControlResult.objects.filter(status__in=[Status.FAIL, Status.EXCEPTED])
    assert len(rows) == expected.count() > 0
    assert {(r["arm_id"], r["control"]) for r in rows} == {(r.cluster.arm_id, r.control) for r in expected.select_related("cluster")}


def test_cluster_and_control_filters_select_the_matching_rows(fleet: ScannedFleet) -> None:
    cluster = Cluster.objects.order_by("name").first()
    section_controls = SECTION_CONTROLS[("cis-k8s", "5.3.1")]
    rows = read_csv(build("findings", "csv", subscription=cluster.subscription_id, framework="cis-k8s", section="5.3.1")[0])
    in_subscription = Cluster.objects.filter(subscription_id=cluster.subscription_id).count()
    assert len(rows) == in_subscription * len(section_controls) > 0
    assert {r["subscription_id"] for r in rows} == {cluster.subscription_id}
    assert {r["control"] for r in rows} == set(section_controls)
    rows = read_jsonl(build("findings", "jsonl", severity="high", tag="env=prod")[0])
    high = {c.id for c in CONTROLS if c.severity == "high"}
    prod = {c.arm_id for c in Cluster.objects.all() if c.tags.get("env") == "prod"}
    assert len(rows) == len(prod) * len(high) > 0
    assert {r["control"] for r in rows} == high and {r["arm_id"] for r in rows} == prod


def test_the_clusters_page_filters_select_the_same_clusters_in_an_export(fleet: ScannedFleet) -> None:
    cluster = Cluster.objects.exclude(network_path="").order_by("name").first()
    page = {
        "q": cluster.name[2:8],
        "network_path": cluster.network_path,
        "connectivity": cluster.connectivity_status,
        "distribution": cluster.distribution,
        "infrastructure": cluster.infrastructure,
    }
    expected = {c.arm_id for c in cluster_list(**page)}
    rows = read_csv(build("scorecards", "csv", **page)[0])
    assert cluster.arm_id in expected
    assert {r["arm_id"] for r in rows} == expected


def test_scorecards_hold_each_clusters_score_and_counts_by_status(fleet: ScannedFleet) -> None:
    data, export = build("scorecards", "xlsx")
    rows = {row["arm_id"]: row for row in read_xlsx(data)}
    assert len(rows) == export.rows == FLEET_CLUSTERS
    assert list(next(iter(rows.values()))) == list(SCORECARD_COLUMNS)
    for cluster in Cluster.objects.order_by("name")[:3]:
        row = rows[cluster.arm_id]
        assert (row["cluster"], row["score"], row["grade"], row["coverage"]) == (
            cluster.name,
            cluster.score,
            cluster.grade,
            cluster.coverage,
        )
        # Excel leaves empty text as a blank cell, read back as None.
        assert (row["network_path"], row["connectivity_status"] or "") == (cluster.network_path, cluster.connectivity_status)
        contact = row["last_connectivity_at"]
        assert (dt.datetime.fromisoformat(contact) if contact else None) == cluster.last_connectivity_at
        for status in Status.values:
            assert row[f"count_{status}"] == ControlResult.objects.filter(cluster=cluster, status=status).count(), status
        assert sum(row[f"count_{s}"] for s in Status.values) == len(CONTROLS)


def test_scorecards_with_a_status_filter_list_the_clusters_holding_such_a_finding(fleet: ScannedFleet) -> None:
    rows = read_csv(build("scorecards", "csv", status="excepted")[0])
    excepted = set(ControlResult.objects.filter(status=Status.EXCEPTED).values_list("cluster__arm_id", flat=True))
    assert {r["arm_id"] for r in rows} == excepted and excepted


def test_excel_goes_on_in_a_new_sheet_past_a_sheets_last_row_and_says_where_it_cut_a_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writers, "SHEET_ROWS", 4)  # a header and 3 rows per sheet
    monkeypatch.setattr(writers, "CELL_CHARS", 100)
    rows = [(str(n), "x" * (150 if n == 5 else 3)) for n in range(8)]
    out = io.BytesIO()
    assert writers.write_xlsx(rows, ("n", "text"), out).rows == 8
    book = openpyxl.load_workbook(io.BytesIO(out.getvalue()), read_only=True)
    assert book.sheetnames == ["export", "export 2", "export 3"]
    found = [row for sheet in book.worksheets for row in list(sheet.iter_rows(values_only=True))[1:]]
    assert [n for n, _ in found] == [str(n) for n in range(8)]
    assert all(list(sheet.iter_rows(values_only=True))[0] == ("n", "text") for sheet in book.worksheets)
    cut = found[5][1]
    assert len(cut) == 100 and cut.endswith(writers.CUT_NOTE) and cut.startswith("x" * (100 - len(writers.CUT_NOTE)))


def test_evidence_is_written_as_sorted_compact_json_keeping_integers_past_64_bits() -> None:
    assert canonical_json('{"b": [1, 2], "a": {"y": "é", "x": null}}') == '{"a":{"x":null,"y":"é"},"b":[1,2]}'
    assert canonical_json('{"n": 123456789012345678901234567890}') == '{"n":123456789012345678901234567890}'
    assert canonical_json(None) == "null"


@pytest.mark.parametrize(
    "text",
    ["plain", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "crlf\r\n", '"', ",", "=1+1", " lead", "tab\there", "é,ü", '{"a":[1,2]}'],
)
def test_csv_fields_are_quoted_exactly_as_the_csv_module_quotes_them(text: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow((text, "x"))
    assert writers.csv_field(text) + ",x\r\n" == buffer.getvalue()
