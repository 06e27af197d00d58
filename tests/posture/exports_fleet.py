"""A scanned emulator fleet with an attestation and an approved exception in force, and helpers
to build exports of it in memory and read them back (CSV, JSON Lines, Excel)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import openpyxl
from django.utils import timezone

from posture import governance
from posture.exports.filters import ExportFilters
from posture.exports.run import export_to_file
from posture.models import Attestation, ControlResult, RiskException, Scan, Status
from posture.scans.evaluation import evaluate_scope
from posture.scans.request import scan_request
from tests.conftest import make_user

FLEET_CLUSTERS = 40


@dataclass
class ScannedFleet:
    scan: Scan
    attestation: Attestation
    exception: RiskException


def scan_fleet(make_emulator: Any, emulator_scope: Any) -> ScannedFleet:
    emulator = make_emulator(clusters=FLEET_CLUSTERS, seed=7)
    scope = emulator_scope(emulator, name="emulated")
    scan, created = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert created and scan.state == Scan.State.SUCCEEDED, (scan.state, scan.error)
    attestation, exception = record_decisions(scope)
    return ScannedFleet(scan, attestation, exception)


def record_decisions(scope: Any) -> tuple[Attestation, RiskException]:
    """An attestation of an unknown result and an approved exception of a failing one's
    subscription, then the scope evaluated again."""
    analyst, admin = make_user("anna-analyst", "analyst"), make_user("adam-admin", "admin")
    later = timezone.now() + dt.timedelta(days=60)
    unknown = ControlResult.objects.filter(status=Status.UNKNOWN, control="ARC-NP-01").select_related("cluster").first()
    failing = ControlResult.objects.filter(status=Status.FAIL).select_related("cluster").order_by("control", "cluster__name").first()
    assert unknown is not None and failing is not None
    attestation = governance.attestation_create(
        user=analyst, control=unknown.control, cluster=unknown.cluster, statement="Calico, checked by hand.", expires_at=later
    )
    exception = governance.exception_request(
        user=analyst,
        control=failing.control,
        subscription_id=failing.cluster.subscription_id,
        justification="Compensated by the site firewall.",
        owner="ops",
        expires_at=later,
    )
    exception = governance.exception_approve(exception=exception, user=admin)
    evaluate_scope(scope.pk)
    return attestation, exception


def run_scan(scope: Any) -> Scan:
    """A scan of the scope, run to its end (eagerly, as the command runs it)."""
    scan, _ = scan_request(scope=scope, trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert scan.state == Scan.State.SUCCEEDED, scan.error
    return scan


def build(kind: str, fmt: str, **filters: Any) -> tuple[bytes, Any]:
    out = io.BytesIO()
    export = export_to_file(kind, fmt, ExportFilters.parse(filters), out, actor="tester")
    return out.getvalue(), export


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def read_jsonl(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


# OOXML writes control characters as _xHHHH_ (ECMA-376 ST_Xstring); Excel reads them back as the
# character, openpyxl leaves inline strings as written.
OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def read_xlsx(data: bytes) -> list[dict[str, Any]]:
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, map(_unescape, row), strict=True)) for row in rows]


def _unescape(value: Any) -> Any:
    return OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value) if isinstance(value, str) else value
