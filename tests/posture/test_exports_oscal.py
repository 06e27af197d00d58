"""OSCAL Assessment Results of a scanned emulator fleet: valid for compliance-trestle's models,
one observation per findings row, findings only where a control is not passing, and every value
checked against the database and the catalog."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from django.core.management import call_command
from trestle.oscal import OSCAL_VERSION
from trestle.oscal import assessment_results as ar

import posture
from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.exports.filters import ExportFilters
from posture.exports.oscal import OSCAL_NS, write_oscal
from posture.exports.writers import Written
from posture.models import ControlResult, Export, Scope, Status
from posture.scans.evaluation import evaluate_scope
from tests.posture.exports_fleet import FLEET_CLUSTERS, ScannedFleet, scan_fleet
from tests.web.conftest import HOSTILE, add_cluster, finished_scan

pytestmark = pytest.mark.django_db(transaction=True)
# Beyond the emulator's: control characters and edges OSCAL's single-line strings cannot hold.
CONTROL_CHARACTERS = ("\tTAB", "\rCR", "line\nbreak", "trailing ", " leading")
NOT_PASSING = (Status.FAIL, Status.UNKNOWN, Status.ATTESTED, Status.EXCEPTED)


@pytest.fixture
def fleet(make_emulator: Any, emulator_scope: Any) -> ScannedFleet:
    return scan_fleet(make_emulator, emulator_scope)


def build_oscal(**filters: Any) -> tuple[str, Written]:
    out = io.BytesIO()
    written = write_oscal(ExportFilters.parse(filters), out)
    return out.getvalue().decode("utf-8"), written


def the_result(text: str) -> dict[str, Any]:
    (result,) = json.loads(text)["assessment-results"]["results"]
    return result


def clusters_by_uuid(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Inventory item uuid → the cluster identity its remarks hold."""
    return {item["uuid"]: json.loads(item["remarks"]) for item in result["local-definitions"]["inventory-items"]}


def by_cluster_and_control(result: dict[str, Any], kind: str) -> dict[tuple[str, str], dict[str, Any]]:
    clusters = clusters_by_uuid(result)
    observations = {o["uuid"]: o for o in result["observations"]}
    keyed = {}
    for item in result.get(kind, []):
        observation = observations[item["related-observations"][0]["observation-uuid"]] if kind == "findings" else item
        arm_id = clusters[observation["subjects"][0]["subject-uuid"]]["arm_id"]
        keyed[(arm_id, ours(item, "control")[0])] = item
    return keyed


def ours(item: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in item.get("props", []) if p["name"] == name and p.get("ns") == OSCAL_NS]


def test_the_document_validates_with_compliance_trestle(fleet: ScannedFleet, tmp_path: Path) -> None:
    text, written = build_oscal()
    document = ar.Model.model_validate_json(text).assessment_results
    path = tmp_path / "assessment-results.json"
    path.write_text(text, encoding="utf-8")
    assert ar.AssessmentResults.oscal_read(path) == document
    assert document.metadata.oscal_version.root.root == OSCAL_VERSION
    assert document.metadata.version == posture.__version__
    assert written.size == len(text.encode("utf-8"))
    back_matter = {resource.uuid for resource in document.back_matter.resources}
    assert document.import_ap.href.removeprefix("#") in back_matter


def test_trestle_rejects_a_document_with_one_broken_uuid(fleet: ScannedFleet) -> None:
    text, _ = build_oscal()
    document = json.loads(text)
    document["assessment-results"]["results"][0]["observations"][3]["uuid"] = "not-a-uuid"
    with pytest.raises(pydantic.ValidationError, match="observations.3.uuid"):
        ar.Model.model_validate_json(json.dumps(document))


def test_one_observation_per_findings_row_with_its_evidence_and_cluster(fleet: ScannedFleet) -> None:
    text, written = build_oscal()
    result = the_result(text)
    assert written.rows == len(result["observations"]) == FLEET_CLUSTERS * len(CONTROLS)
    assert len(result["local-definitions"]["inventory-items"]) == FLEET_CLUSTERS
    selections = result["reviewed-controls"]["control-selections"]
    assert [s["include-controls"] for s in selections] == [[{"control-id": c.id}] for c in CONTROLS]
    observations = by_cluster_and_control(result, "observations")
    clusters = clusters_by_uuid(result)
    for stored in ControlResult.objects.select_related("cluster"):
        observation = observations[(stored.cluster.arm_id, stored.control)]
        assert ours(observation, "status") == [stored.status]
        assert ours(observation, "reason") == [stored.reason]
        assert ours(observation, "scan_id") == [str(stored.cluster.facts_scan_id)]
        assert json.loads(observation["relevant-evidence"][0]["remarks"]) == stored.evidence
        assert observation["collected"] == stored.since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert observation["methods"] == (["TEST", "EXAMINE"] if stored.attestation_id else ["TEST"])
        subject = observation["subjects"][0]
        assert subject["type"] == "inventory-item" and subject["title"] == stored.cluster.arm_id
        assert clusters[subject["subject-uuid"]]["cluster"] == stored.cluster.name


def test_findings_only_for_controls_not_passing_with_state_and_reason(fleet: ScannedFleet) -> None:
    result = the_result(build_oscal()[0])
    findings = by_cluster_and_control(result, "findings")
    not_passing = ControlResult.objects.filter(status__in=NOT_PASSING).select_related("cluster")
    assert set(findings) == {(r.cluster.arm_id, r.control) for r in not_passing}
    assert {r.status for r in not_passing} == set(NOT_PASSING)  # the fleet has each kind
    expected = {
        Status.FAIL: ("not-satisfied", "fail"),
        Status.UNKNOWN: ("not-satisfied", "other"),
        Status.ATTESTED: ("satisfied", "other"),
        Status.EXCEPTED: ("not-satisfied", "other"),
    }
    for stored in not_passing:
        finding = findings[(stored.cluster.arm_id, stored.control)]
        status = finding["target"]["status"]
        assert (status["state"], status["reason"]) == expected[stored.status]
        assert finding["target"]["target-id"] == f"{stored.control}_obj"
        assert stored.reason in status["remarks"]


def test_attestation_and_exception_are_named_in_their_findings(fleet: ScannedFleet) -> None:
    findings = by_cluster_and_control(the_result(build_oscal()[0]), "findings")
    attested = ControlResult.objects.select_related("cluster").get(attestation=fleet.attestation)
    finding = findings[(attested.cluster.arm_id, attested.control)]
    assert ours(finding, "attestation-id") == [str(fleet.attestation.pk)]
    assert fleet.attestation.statement in finding["remarks"] and "anna-analyst" in finding["remarks"]
    for excepted in ControlResult.objects.select_related("cluster").filter(exception=fleet.exception):
        finding = findings[(excepted.cluster.arm_id, excepted.control)]
        assert ours(finding, "exception-id") == [str(fleet.exception.pk)]
        assert fleet.exception.justification in finding["remarks"] and "adam-admin" in finding["remarks"]


def test_findings_carry_every_benchmark_reference_and_controls_link_them(fleet: ScannedFleet) -> None:
    document = json.loads(build_oscal()[0])["assessment-results"]
    result = document["results"][0]
    resources = {r["uuid"]: r for r in document["back-matter"]["resources"]}
    for (_, control_id), finding in by_cluster_and_control(result, "findings").items():
        control = CONTROLS_BY_ID[control_id]
        references = [(p["group"], p["class"], p["value"]) for p in finding["props"] if p["name"] == "reference"]
        assert [(group, kind) for group, kind, _ in references] == [(ref.framework, ref.kind) for ref in control.references]
        assert {value for _, kind, value in references if kind == "printed"} == {ref.label() for ref in control.printed}
    for selection in result["reviewed-controls"]["control-selections"]:
        (chosen,) = selection["include-controls"]
        control = CONTROLS_BY_ID[chosen["control-id"]]
        assert [link["text"] for link in selection["links"]] == [ref.label() for ref in control.references]
        for link, ref in zip(selection["links"], control.references, strict=True):
            assert ref.framework in ours(resources[link["href"].removeprefix("#")], "framework-id")


def test_hostile_cluster_names_round_trip_exactly(fleet: ScannedFleet) -> None:
    result = the_result(build_oscal()[0])
    names = {identity["cluster"] for identity in clusters_by_uuid(result).values()}
    hostile = set(ControlResult.objects.filter(cluster__name__startswith="test-").values_list("cluster__name", flat=True))
    assert hostile and hostile <= names
    described = "\n".join(o["description"] for o in result["observations"])
    assert all(f"on cluster {name} (" in described for name in hostile)


def test_filters_narrow_controls_observations_and_findings(fleet: ScannedFleet) -> None:
    text, written = build_oscal(control="ARC-NP-01", status="fail,unknown")
    ar.Model.model_validate_json(text)
    result = the_result(text)
    selected = [s["include-controls"] for s in result["reviewed-controls"]["control-selections"]]
    assert selected == [[{"control-id": "ARC-NP-01"}]]
    stored = ControlResult.objects.filter(control="ARC-NP-01", status__in=("fail", "unknown"))
    assert written.rows == len(result["observations"]) == len(result["findings"]) == stored.count() > 0


def test_passing_only_export_is_valid_with_no_findings(fleet: ScannedFleet) -> None:
    text, written = build_oscal(status="pass")
    ar.Model.model_validate_json(text)
    result = the_result(text)
    assert "findings" not in result
    assert written.rows == ControlResult.objects.filter(status="pass").count() == len(result["observations"])


def test_two_exports_of_the_same_data_differ_only_in_last_modified(fleet: ScannedFleet) -> None:
    first, second = json.loads(build_oscal()[0]), json.loads(build_oscal()[0])
    for document in (first, second):
        del document["assessment-results"]["metadata"]["last-modified"]
    assert first == second


def test_names_with_control_characters_keep_the_document_valid_and_exact(db: Any) -> None:
    scope = Scope.objects.create(name="corp", tenant_id="contoso.onmicrosoft.com")
    scan = finished_scan(scope, ["11111111-1111-1111-1111-111111111111"])
    names = (*HOSTILE, *CONTROL_CHARACTERS)
    clusters = [add_cluster(scope, scan, n, name=name, tags={name: name}) for n, name in enumerate(names)]
    assert [c.name for c in clusters] == list(names)
    evaluate_scope(scope.pk, scan=scan)
    text, written = build_oscal()
    ar.Model.model_validate_json(text)
    identities = sorted(clusters_by_uuid(the_result(text)).values(), key=lambda i: i["arm_id"])
    assert [(i["cluster"], i["arm_id"]) for i in identities] == sorted(((c.name, c.arm_id) for c in clusters), key=lambda p: p[1])
    assert written.rows == len(names) * len(CONTROLS)


def test_the_export_command_writes_a_valid_oscal_document_and_audits_it(fleet: ScannedFleet, tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    call_command("export", "oscal", "--format", "json", "--control", "ARC-NP-01", "--output", str(output))
    text = output.read_text(encoding="utf-8")
    assert ar.Model.model_validate_json(text).assessment_results.results[0].observations
    export = Export.objects.get(kind="oscal")
    assert export.state == Export.State.SUCCEEDED and export.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert export.filters == {"control": ["ARC-NP-01"]}
