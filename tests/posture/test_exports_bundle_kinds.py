"""Reports and the evidence bundle as export kinds: a bundle of a scanned emulator fleet holds
every part, verifies, and its findings equal a standalone export; the CLI builds both."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from html import escape
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from posture.catalog.frameworks import FRAMEWORKS
from posture.exports.bundle_build import FINDINGS_CSV
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.run import export_to_file
from posture.exports.verify import verify_bundle
from posture.models import Cluster, Export, QueryEvidence
from tests.posture.exports_fleet import FLEET_CLUSTERS, ScannedFleet, build, read_csv, scan_fleet

pytestmark = pytest.mark.django_db(transaction=True)
FILTERS = {"severity": ["high", "medium"], "status": ["fail", "unknown", "excepted", "attested"]}


@pytest.fixture(autouse=True)
def embedded_key_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.EVIDENCE_SIGNING_KEY = None
    settings.EVIDENCE_SIGNING_KEY_PATH = tmp_path / "var" / "evidence_signing_key"


@pytest.fixture
def fleet(make_emulator: Any, emulator_scope: Any) -> ScannedFleet:
    return scan_fleet(make_emulator, emulator_scope)


def bundle_of(tmp_path: Path, progress: Any = None, **filters: Any) -> tuple[Path, Export]:
    out = io.BytesIO()
    export = export_to_file("bundle", "zip", ExportFilters.parse(filters), out, actor="tester", progress=progress)
    path = tmp_path / "bundle.zip"
    path.write_bytes(out.getvalue())
    return path, export


def test_a_bundle_holds_every_part_verifies_and_its_findings_equal_a_standalone_export(fleet: ScannedFleet, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    path, export = bundle_of(tmp_path, progress=lambda done, total: seen.append((done, total)), **FILTERS)
    assert verify_bundle(path).ok
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist())
        manifest = json.loads(bundle.read("manifest.json"))
        contents = {name: bundle.read(name) for name in (FINDINGS_CSV, "findings.jsonl", "scorecards.csv")}
        reports = {name: bundle.read(name) for name in names if name.startswith("reports/")}
        governance = {name: json.loads(bundle.read(f"governance/{name}.json")) for name in ("attestations", "exceptions")}
    # The findings, JSON Lines and scorecards are byte for byte the standalone exports of the same filters.
    for name, (kind, fmt) in {
        FINDINGS_CSV: ("findings", "csv"),
        "findings.jsonl": ("findings", "jsonl"),
        "scorecards.csv": ("scorecards", "csv"),
    }.items():
        assert contents[name] == build(kind, fmt, **FILTERS)[0], name
    findings = read_csv(contents[FINDINGS_CSV])
    assert findings and {row["status"] for row in findings} <= set(FILTERS["status"])
    # One HTML and one PDF report per framework of the catalog.
    assert sorted(reports) == sorted(f"reports/{fw}.{ext}" for fw in FRAMEWORKS for ext in ("html", "pdf"))
    assert all(reports[f"reports/{fw}.pdf"].startswith(b"%PDF-") for fw in FRAMEWORKS)
    assert all(escape(FRAMEWORKS[fw].title).encode() in reports[f"reports/{fw}.html"] for fw in FRAMEWORKS)
    assert [r["framework"] for r in manifest["reports"]] == list(FRAMEWORKS)
    assert all(r["clusters"] == FLEET_CLUSTERS for r in manifest["reports"])
    # The raw evidence of the scan the clusters' facts came from, and the governance in force.
    assert manifest["scans"] == [str(fleet.scan.pk)] == sorted({str(c.facts_scan_id) for c in Cluster.objects.all()})
    evidence = sorted(n for n in names if n.startswith("evidence/"))
    assert evidence and all(n.startswith(f"evidence/scan-{fleet.scan.pk}/") for n in evidence)
    assert len(evidence) == QueryEvidence.objects.filter(batch__scan=fleet.scan).count()
    assert [a["id"] for a in governance["attestations"]] == [fleet.attestation.pk]
    assert [e["id"] for e in governance["exceptions"]] == [fleet.exception.pk]
    # The manifest records the filters, the as-of, the scope and every row count.
    assert manifest["filters"] == FILTERS and manifest["as_of"]
    assert manifest["scope"]["all_scopes"] and [s["name"] for s in manifest["scope"]["scopes"]] == ["emulated"]
    rows = {entry["path"]: entry.get("rows") for entry in manifest["files"]}
    assert rows[FINDINGS_CSV] == rows["findings.jsonl"] == len(findings)
    assert rows["scorecards.csv"] == len(read_csv(contents["scorecards.csv"]))
    # The audit row: the bundle's own digest and its findings count.
    data = path.read_bytes()
    assert (export.kind, export.format, export.state, export.rows) == ("bundle", "zip", Export.State.SUCCEEDED, len(findings))
    assert (export.sha256, export.size) == (hashlib.sha256(data).hexdigest(), len(data))
    # Progress: one bar over the parts, never going back, ending full.
    assert seen and seen == sorted(seen) and seen[-1][0] == seen[-1][1] and len({total for _, total in seen}) == 1


def test_the_cli_builds_reports_and_a_bundle_and_refuses_a_report_without_framework(fleet: ScannedFleet, tmp_path: Path) -> None:
    def export(kind: str, fmt: str, *filters: str) -> Path:
        output = tmp_path / f"{kind}.{fmt}"
        call_command("export", kind, "--format", fmt, "--output", str(output), *filters, stdout=io.StringIO())
        return output

    html = export("report", "html", "--framework", "nsa-cisa", "--scope", "emulated").read_text(encoding="utf-8")
    assert escape(FRAMEWORKS["nsa-cisa"].title) in html and "Scope: emulated" in html
    assert export("report", "pdf", "--framework", "cis-k8s").read_bytes().startswith(b"%PDF-")
    bundle = export("bundle", "zip", "--scope", "emulated", "--framework", "cis-k8s")
    assert verify_bundle(bundle).ok
    audit = {(e.kind, e.format): e for e in Export.objects.all()}
    assert set(audit) == {("report", "html"), ("report", "pdf"), ("bundle", "zip")}
    assert audit[("report", "html")].filters == {"framework": "nsa-cisa", "scope": "emulated"}
    assert audit[("report", "pdf")].rows == FLEET_CLUSTERS
    assert audit[("report", "html")].sha256 == hashlib.sha256(html.encode()).hexdigest()

    with pytest.raises(CommandError, match="A report is of one framework: give the framework filter"):
        export("report", "pdf")
    with pytest.raises(CommandError, match="the filters grade, status do not apply"):
        export("report", "html", "--framework", "cis-k8s", "--grade", "F", "--status", "fail")
    with pytest.raises(CommandError, match="No 'csv' format for report"):
        export("report", "csv", "--framework", "cis-k8s")
    assert Export.objects.count() == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["bundle.zip", "report.html", "report.pdf"]


def test_a_report_without_framework_fails_before_any_audit_row() -> None:
    with pytest.raises(ExportError, match="A report is of one framework"):
        export_to_file("report", "html", ExportFilters.parse({}), io.BytesIO())
    assert not Export.objects.exists()
