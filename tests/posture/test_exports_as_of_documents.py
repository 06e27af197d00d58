"""Benchmark reports and the evidence bundle as of a past time: after the fleet changed between two
scans (a cluster renamed and moved among the changes), the documents as of the first equal those
taken right after it (only the printed as-of time and the note saying they were rebuilt differ);
dates the history cannot answer are refused."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import time
import zipfile
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django.utils.html import escape
from pypdf import PdfReader

from posture import governance
from posture.catalog.controls import CONTROLS
from posture.catalog.frameworks import FRAMEWORKS
from posture.exports import rows
from posture.exports.errors import ExportError
from posture.exports.governance_in_force import attestations_in_force, exceptions_in_force
from posture.exports.history import history_begins, results_as_of, statuses_as_of
from posture.exports.report_history import benchmark_report_as_of
from posture.exports.reports import BenchmarkReport, benchmark_report, render_report, utc_label
from posture.exports.verify import verify_bundle
from posture.models import Cluster, ClusterHistory, GovernanceEvent, Scan
from posture.timestamps import iso_utc
from tests.conftest import make_user
from tests.posture.exports_fleet import build, read_csv, record_decisions
from tests.posture.test_exports_as_of import change_the_fleet, run_scan

pytestmark = pytest.mark.django_db(transaction=True)

REBUILT = " (rebuilt from history)"
FOOTER = re.compile(r"Page (\d+) of (\d+)")
RENAMED = "zzz-renamed"


def change_and_rename(fleet: Any, added: str) -> str:
    """change_the_fleet, and before it the first cluster by name (one that stays) renamed to sort
    last and moved to another region. Returns its old name: the documents as of the first scan
    list it under that name, first, where today's list it last."""
    leaving = max(row["id"] for row in fleet.clusters())  # change_the_fleet removes the last by id
    first = min((row for row in fleet.clusters() if row["id"] != leaving), key=lambda row: (row["name"], row["id"]))
    moved = "northeurope" if first["location"] != "northeurope" else "westeurope"
    fleet.update_cluster(first["id"], {"name": RENAMED, "location": moved})
    change_the_fleet(fleet, added)
    return str(first["name"])


def listed_names(report: BenchmarkReport) -> set[str]:
    return {cluster.name for part in report.sections for lst in part.lists for cluster in lst.clusters}


def report_data(report: BenchmarkReport) -> list[Any]:
    """What a report states: per section its tallies, its controls' tallies and its lists."""
    return [
        (
            part.section.id,
            part.tallies,
            [(row.control.id, row.tallies) for row in part.controls],
            [(lst.status, lst.total, [c.name for c in lst.clusters]) for lst in part.lists],
        )
        for part in report.sections
    ] + [report.clusters, report.evaluated_label, report.scope_label]


def without_as_of(html: str) -> str:
    """The report's HTML without what may differ: the as-of time it prints, and the note saying
    it was rebuilt."""
    html = re.sub(r"— as of [^<]*</title>", "— as of …</title>", html)
    html = re.sub(r'<dd class="run-as-of">[^<]*</dd>', '<dd class="run-as-of">…</dd>', html)
    return re.sub(r'<p class="rebuilt">.*?</p>', "", html, flags=re.S)


def assert_rebuilt_as_of(html: str, at: dt.datetime) -> None:
    label = utc_label(at)
    assert f'<dd class="run-as-of">{label}{REBUILT}</dd>' in html and f"— as of {label}{REBUILT}</title>" in html
    assert f"This report is rebuilt as of {label} from the stored history" in html


def test_a_report_as_of_the_first_scan_equals_the_report_taken_right_after_it(make_emulator, emulator_scope, monkeypatch) -> None:
    monkeypatch.setattr(rows, "CHUNK_CLUSTERS", 7)  # many chunks: lists span their borders
    emulator = make_emulator(clusters=40, seed=7)
    added = sorted(row["id"] for row in emulator.fleet.clusters())[5]
    emulator.fleet.remove_cluster(added)
    scope = emulator_scope(emulator, name="emulated")
    first = run_scan(scope)
    taken_at = timezone.now()
    right_after = {fw: benchmark_report(fw, [scope.pk], taken_at, limit=3) for fw in FRAMEWORKS}
    exported_right_after = build("report", "html", framework="cis-k8s")[0].decode()

    renamed = change_and_rename(emulator.fleet, added)
    run_scan(scope)
    now = {fw: benchmark_report(fw, [scope.pk], timezone.now(), limit=3) for fw in FRAMEWORKS}
    assert any(report_data(now[fw]) != report_data(right_after[fw]) for fw in FRAMEWORKS)
    assert Cluster.objects.filter(name=RENAMED).exists()
    assert all(renamed in listed_names(then) for then in right_after.values())

    at = first.finished_at
    ids, controls = list(Cluster.objects.values_list("pk", flat=True)), [c.id for c in CONTROLS]
    for moment in (at, timezone.now()):  # the counting read agrees with the findings' one
        assert statuses_as_of(ids, moment, controls) == {k: v["status"] for k, v in results_as_of(ids, moment).items()}
    for framework, then in right_after.items():
        rebuilt = benchmark_report_as_of(framework, [scope.pk], at, limit=3)
        assert rebuilt.rebuilt and rebuilt.as_of == at
        assert report_data(rebuilt) == report_data(then), framework
        assert renamed in listed_names(rebuilt) and RENAMED not in listed_names(rebuilt)  # by its name then, first
        assert any(lst.more for part in rebuilt.sections for lst in part.lists)  # lists cut at 3, totals exact
        html = render_report(rebuilt)
        assert_rebuilt_as_of(html, at)
        assert without_as_of(html) == without_as_of(render_report(then)), framework

    exported, audit = build("report", "html", framework="cis-k8s", as_of=at.isoformat())
    assert_rebuilt_as_of(exported.decode(), at)
    assert (
        without_as_of(exported.decode())
        == without_as_of(exported_right_after)
        != without_as_of(build("report", "html", framework="cis-k8s")[0].decode())
    )
    assert audit.as_of == at and audit.rows == right_after["cis-k8s"].clusters == 39  # the clusters then


def test_a_pdf_report_as_of_a_past_time_prints_that_time_on_every_page(make_emulator, emulator_scope) -> None:
    scope = emulator_scope(make_emulator(clusters=30, seed=3), name="emulated")
    at = run_scan(scope).finished_at
    run_scan(scope)
    data, _ = build("report", "pdf", framework="nist-800-190", scope="emulated", as_of=at.isoformat())
    # pypdf reads runs of a font embedded with two-byte codes with a NUL before each character.
    pages = [" ".join(page.extract_text().replace("\x00", "").split()) for page in PdfReader(io.BytesIO(data)).pages]
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"As of {utc_label(at)}{REBUILT}" in text and "Scope: emulated" in text
        assert FOOTER.findall(text) == [(str(number), str(len(pages)))]
    assert f"This report is rebuilt as of {utc_label(at)} from the stored history" in pages[0]


def bundle_parts(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def test_a_bundle_as_of_the_first_scan_holds_what_was_in_force_then_and_verifies(make_emulator, emulator_scope, tmp_path) -> None:
    emulator = make_emulator(clusters=40, seed=7)
    added = sorted(row["id"] for row in emulator.fleet.clusters())[5]
    emulator.fleet.remove_cluster(added)
    scope = emulator_scope(emulator, name="emulated")
    first = run_scan(scope)
    attestation, exception = record_decisions(scope)
    at = timezone.now()
    right_after = bundle_parts(build("bundle", "zip")[0])

    # Since then: both decisions revoked, the exception by another admin (findings then still name
    # its approver), a cluster renamed and moved, a cluster added and another removed, three gone offline.
    governance.attestation_revoke(attestation=attestation, user=attestation.attested_by)
    governance.exception_revoke(exception=exception, user=make_user("rita-revoker", "admin"))
    renamed = change_and_rename(emulator.fleet, added)
    second = run_scan(scope)
    now = bundle_parts(build("bundle", "zip")[0])
    assert now["findings.csv"] != right_after["findings.csv"]
    assert RENAMED.encode() in now["scorecards.csv"] and RENAMED.encode() not in right_after["scorecards.csv"]
    assert json.loads(now["governance/exceptions.json"]) == [] == json.loads(now["governance/attestations.json"])
    assert str(second.pk) in json.loads(now["manifest.json"])["scans"]

    data, audit = build("bundle", "zip", as_of=at.isoformat())
    path = tmp_path / "then.zip"
    path.write_bytes(data)
    assert verify_bundle(path).ok
    call_command("verify_evidence", str(path))
    then = bundle_parts(data)
    manifest = json.loads(then["manifest.json"])
    assert manifest["as_of"] == at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") and manifest["filters"] == {
        "as_of": at.isoformat()
    }
    for name in ("findings.csv", "findings.jsonl", "governance/attestations.json", "governance/exceptions.json"):
        assert then[name] == right_after[name], name
    assert [e["id"] for e in json.loads(then["governance/exceptions.json"])] == [exception.pk]
    assert [a["id"] for a in json.loads(then["governance/attestations.json"])] == [attestation.pk]
    # The first scan's raw evidence only, as it was bundled right after it.
    assert manifest["scans"] == [str(first.pk)]
    evidence = sorted(name for name in then if name.startswith("evidence/"))
    assert evidence and evidence == sorted(name for name in right_after if name.startswith("evidence/"))
    assert all(then[name] == right_after[name] for name in evidence)
    for framework in FRAMEWORKS:
        html = then[f"reports/{framework}.html"].decode()
        assert_rebuilt_as_of(html, at)
        assert without_as_of(html) == without_as_of(right_after[f"reports/{framework}.html"].decode()), framework
        assert f"<td>{escape(renamed)}</td>" in html and RENAMED not in html, framework
    assert {r["framework"]: r["rebuilt_from_history"] for r in manifest["reports"]} == dict.fromkeys(FRAMEWORKS, True)
    # Scorecards rebuild the past too, cell by cell (the renamed cluster under its old name), but
    # for the contact time of a row the second scan rewrote recording nothing (a cluster already
    # offline given a new contact time): not kept, so blank then, never today's.
    unkept = Cluster.objects.filter(facts_scan=second).exclude(pk__in=ClusterHistory.objects.values("cluster_id"))
    unkept_ids = set(unkept.values_list("arm_id", flat=True))
    expected = read_csv(right_after["scorecards.csv"])
    assert unkept_ids and all(row["last_connectivity_at"] for row in expected if row["arm_id"] in unkept_ids)
    assert read_csv(then["scorecards.csv"]) == [
        {**row, "last_connectivity_at": ""} if row["arm_id"] in unkept_ids else row for row in expected
    ]
    assert audit.as_of == at


def test_a_report_or_bundle_as_of_before_the_history_begins_is_refused_saying_when_it_begins(
    make_emulator, emulator_scope, tmp_path
) -> None:
    scope = emulator_scope(make_emulator(clusters=10), name="emulated")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    with pytest.raises(ExportError, match="No evaluation has finished yet"):
        build("report", "html", framework="cis-k8s", as_of=timezone.now().isoformat())
    run_scan(scope)
    begins = history_begins([scope.pk])
    assert begins is not None
    early = (begins - dt.timedelta(seconds=1)).isoformat()
    said = re.escape(f"is before the history begins: history for scope 'emulated' begins at {begins.isoformat()}")
    for kind, fmt, framework in (("report", "html", "cis-k8s"), ("report", "pdf", "owasp-k8s"), ("bundle", "zip", "")):
        with pytest.raises(ExportError, match=said):
            build(kind, fmt, framework=framework, as_of=early)
        with pytest.raises(CommandError, match=said):
            extra = ["--framework", framework] if framework else []
            call_command("export", kind, "--format", fmt, *extra, "--as-of", early, "--output", str(outputs / f"out.{fmt}"))
    with pytest.raises(ExportError, match=said):  # the report's own reader refuses it too
        benchmark_report_as_of("cis-k8s", [scope.pk], begins - dt.timedelta(seconds=1))
    assert not list(outputs.iterdir())  # nothing half-written
    assert Scan.objects.count() == 1


def test_decisions_as_of_a_time_are_as_they_stood_then_though_changed_revoked_or_approved_since() -> None:
    analyst, admin, other_admin = make_user("anna", "analyst"), make_user("adam", "admin"), make_user("olga", "admin")
    days = timezone.now() + dt.timedelta(days=10)
    target = {"control": "ARC-NET-01", "subscription_id": "00000000-0000-0000-0000-000000000001"}
    changed = governance.attestation_create(user=analyst, control="ARC-NET-01", tag_key="env", statement="v1", expires_at=days)
    revoked = governance.exception_request(user=analyst, justification="until the move", owner="ops", expires_at=days, **target)
    revoked = governance.exception_approve(exception=revoked, user=admin)
    approved_since = governance.exception_request(user=analyst, justification="asked before", owner="ops", expires_at=days, **target)
    at = timezone.now()
    time.sleep(0.01)
    later = days + dt.timedelta(days=5)
    governance.attestation_update(attestation=changed, user=analyst, statement="v2", evidence_url="", expires_at=later)
    created_since = governance.attestation_create(user=analyst, control="ARC-NET-01", tag_key="env", statement="new", expires_at=days)
    governance.exception_revoke(exception=revoked, user=other_admin)
    governance.exception_approve(exception=approved_since, user=admin)

    [attestation] = attestations_in_force(at)
    assert (attestation["id"], attestation["why"], attestation["until"]) == (changed.pk, "v1", iso_utc(days))
    [exception] = exceptions_in_force(at)
    assert (exception["id"], exception["who"]["approved_by"], exception["why"]) == (revoked.pk, "adam", "until the move")
    assert exception["since"] == iso_utc(governance_decided_at(revoked.pk, "approved"))
    # Now: the attestation as changed, the one created since; the exception approved since.
    assert [(a["id"], a["why"]) for a in attestations_in_force(timezone.now())] == [(changed.pk, "v2"), (created_since.pk, "new")]
    assert [e["id"] for e in exceptions_in_force(timezone.now())] == [approved_since.pk]


def governance_decided_at(exception_id: int, action: str) -> dt.datetime:
    event = GovernanceEvent.objects.get(kind="exception", object_id=exception_id, action=action)
    return dt.datetime.fromisoformat(event.data["decided_at"])
