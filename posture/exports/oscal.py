"""OSCAL 1.2.1 Assessment Results (JSON) of the findings, for compliance tooling.

One document, one result:
- `reviewed-controls`: the controls the filters select;
- `local-definitions.inventory-items`: one per cluster (its identity, exact, as JSON in `remarks`);
- `observations`: one per findings row (cluster × control), naming the cluster as its subject, with
  the evidence values the verdict used (exact JSON in `relevant-evidence`);
- `findings`: one per row that is not passing. fail, unknown and not yet evaluated are
  `not-satisfied`. An attestation (an analyst checked by hand) is `satisfied`, reason `other`; an
  exception only accepts the risk of a failure, so it stays `not-satisfied`, reason `other`. Both
  name the attestation or exception in props and in remarks (who, why, until when). pass and
  not_applicable get no finding.
- `back-matter`: the assessment method (the `import-ap` target: we keep no assessment plan document)
  and one resource per framework. Each finding names its control's references in props (class
  printed/closer, group = framework id); the reviewed control's selection links them, with
  Microsoft's wording, to the framework resources (once per control, not per finding).

Our props carry `ns` = OSCAL_NS. OSCAL props are tokens or trimmed single lines, so a value from
Azure that is not one (never seen, but Azure's strings are hostile) is left out of the props; the
exact values always travel in descriptions and remarks, which take any text.

UUIDs are uuid5 of UUID_NAMESPACE and what the item describes (cluster, control, scan, and when the
status began): two exports of the same data differ only in `last-modified`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import uuid
from typing import IO, Any, BinaryIO

from django.db.models import Max, Min
from django.utils import timezone

import posture
from posture.catalog.controls import CATALOG_VERSION, CONTROLS_BY_ID, Control
from posture.catalog.frameworks import FRAMEWORKS, PRINTED, Ref
from posture.exports.cells import SHORT_NAMES
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.rows import FINDINGS_COLUMNS, IDENTITY, Progress, as_dicts, findings_rows
from posture.exports.writers import HashingWriter, Written
from posture.models import Status

OSCAL_VERSION = "1.2.1"  # trestle.oscal.OSCAL_VERSION of the compliance-trestle that validates it
OSCAL_CONTENT_TYPE = "application/json; charset=utf-8"
OSCAL_NS = "https://arc-posture.example/ns/oscal"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, OSCAL_NS)
PASSING = (Status.PASS, Status.NOT_APPLICABLE)
# OSCAL's `string` (prop values) and single-line titles.
PROP_VALUE = re.compile(r"\S(?:[^\n]*\S)?")
JSON_COMPACT = {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": True}


def write_oscal(filters: ExportFilters, out: BinaryIO, *, progress: Progress | None = None) -> Written:
    """Write the Assessment Results of the findings `filters` select; rows = observations.

    Streamed: observations go straight to `out`, findings and inventory items to temporary files
    appended at the end (JSON keys may come in any order), so memory stays constant at 100,000
    clusters × 15 controls. Items are plain dicts serialised one by one: building a trestle
    model per item would cost far more than the export itself; the tests validate whole
    documents with trestle's models instead."""
    controls = filters.controls()
    if not controls:
        raise ExportError("The filters select no controls: OSCAL Assessment Results need at least one reviewed control.")
    start, end = _evaluation_span(filters)
    sink = HashingWriter(out)
    observations = 0
    with tempfile.TemporaryFile() as findings_file, tempfile.TemporaryFile() as items_file:
        findings, items = JsonArray(findings_file), JsonArray(items_file)
        sink.write(_open_document(filters, controls, start, end))
        observed = JsonArray(sink, key="observations")
        last_cluster = None
        for row in as_dicts(findings_rows(filters, progress=progress), FINDINGS_COLUMNS):
            if row["arm_id"] != last_cluster:
                last_cluster = row["arm_id"]
                items.add(_inventory_item(row))
            observation = _observation(row, start)
            observed.add(observation)
            observations += 1
            if row["status"] not in PASSING:
                findings.add(_finding(row, observation["uuid"]))
        observed.close()
        findings.append_to(sink, ',"findings":[', "]")
        items.append_to(sink, ',"local-definitions":{"inventory-items":[', "]}")
        sink.write(b"}]," + _json({"back-matter": _back_matter()})[1:-1] + b"}}\n")
    return sink.written(observations)


class JsonArray:
    """Items written one by one as the members of a JSON array; the `[` comes with the first item
    (OSCAL arrays hold at least one item: an empty one is left out)."""

    def __init__(self, out: IO[bytes] | HashingWriter, key: str = "") -> None:  # a temporary file, or the sink
        self.out, self.key, self.count = out, key, 0

    def add(self, item: dict[str, Any]) -> None:
        opening = b"," if self.count else (f',"{self.key}":['.encode() if self.key else b"")
        self.out.write(opening + _json(item))
        self.count += 1

    def close(self) -> None:
        if self.count:
            self.out.write(b"]")

    def append_to(self, sink: HashingWriter, opening: str, closing: str) -> None:
        """Copy a keyless array, written to a temporary file, into `sink` under its key."""
        if not self.count:
            return
        sink.write(opening.encode())
        self.out.seek(0)
        shutil.copyfileobj(self.out, sink)
        sink.write(closing.encode())


def _open_document(filters: ExportFilters, controls: tuple[Control, ...], start: dt.datetime, end: dt.datetime) -> bytes:
    """The document up to the result's first observation (left open)."""
    span = f"{filters.as_dict()}|{_iso(start)}|{_iso(end)}"
    result = {
        "uuid": _uuid("result", span),
        "title": "Arc Posture: network posture of Azure Arc-enabled Kubernetes clusters",
        "description": "The verdicts Arc Posture stored for the selected clusters and controls, with the evidence they used.",
        "start": _iso(start),
        "end": _iso(end),
        "reviewed-controls": {
            # One selection per control, so each carries its references' links once for all findings.
            "control-selections": [
                {"include-controls": [{"control-id": control.id}], "links": [_reference_link(ref) for ref in control.references]}
                for control in controls
            ],
        },
        "remarks": "Filters (JSON): " + json.dumps(filters.as_dict(), **JSON_COMPACT),
    }
    document = {
        "uuid": _uuid("assessment-results", span),
        "metadata": {
            "title": "Arc Posture assessment results",
            "last-modified": _iso(timezone.now()),
            "version": posture.__version__,
            "oscal-version": OSCAL_VERSION,
            "props": [_prop("catalog-version", CATALOG_VERSION)],
        },
        "import-ap": {
            "href": "#" + _uuid("method"),
            "remarks": "Arc Posture keeps no assessment plan document: the back-matter resource describes the method.",
        },
    }
    head = _json({"assessment-results": document})[:-2]  # open: the results follow
    return head + b',"results":[' + _json(result)[:-1]


def _evaluation_span(filters: ExportFilters) -> tuple[dt.datetime, dt.datetime]:
    """When the selected clusters were first and last evaluated (now, if none was)."""
    span = filters.clusters().order_by().aggregate(first=Min("evaluated_at"), last=Max("evaluated_at"))
    now = timezone.now()
    return span["first"] or now, span["last"] or now


def _inventory_item(row: dict[str, Any]) -> dict[str, Any]:
    identity = {name: row[name] for name in IDENTITY}
    props = [_prop("asset-id", row["arm_id"], ours=False), _prop("asset-type", "kubernetes-cluster")]
    return {
        "uuid": _cluster_uuid(row),
        "description": "An Azure Arc-enabled Kubernetes cluster; remarks: its identity as JSON.",
        "props": [p for p in props if p],
        "remarks": json.dumps(identity, **JSON_COMPACT),
    }


def _observation(row: dict[str, Any], start: dt.datetime) -> dict[str, Any]:
    control = CONTROLS_BY_ID[row["control"]]
    status = row["status"] or "not evaluated"
    subject = {"subject-uuid": _cluster_uuid(row), "type": "inventory-item", "title": _line(row["arm_id"])}
    subject_props = [_prop("arm-id", row["arm_id"])]
    props = [_prop(name, row[name]) for name in ("control", "severity", "status", "reason", "scan_id")]
    return {
        "uuid": _uuid("observation", _key(row)),
        "title": f"{control.id}: {control.title}",
        "description": f"{control.id} on cluster {row['cluster']} ({row['arm_id']}): {status}. {row['detail']}".strip(),
        "props": [p for p in props if p],
        "methods": ["TEST", "EXAMINE"] if row["attestation_id"] else ["TEST"],
        "subjects": [_without_empty({**subject, "props": [p for p in subject_props if p]})],
        "relevant-evidence": [
            {
                "description": "The evidence values the verdict used; remarks: them as JSON.",
                "remarks": row["evidence"] or "{}",
            }
        ],
        "collected": _iso(dt.datetime.fromisoformat(row["since"]) if row["since"] else start),
    }


def _finding(row: dict[str, Any], observation_uuid: str) -> dict[str, Any]:
    control = CONTROLS_BY_ID[row["control"]]
    status = row["status"] or "not evaluated"
    satisfied = row["status"] == Status.ATTESTED
    reason = "fail" if row["status"] == Status.FAIL else "other"
    props = [_prop("control", control.id), _prop("severity", control.severity), _prop("status", row["status"])]
    props += [_prop("attestation-id", row["attestation_id"]), _prop("exception-id", row["exception_id"])]
    return {
        "uuid": _uuid("finding", _key(row)),
        "title": f"{control.id} {status} on a cluster",
        "description": f"{control.id} ({control.title}) is {status} on cluster {row['cluster']} ({row['arm_id']}).",
        "props": [p for p in props if p] + [_reference_prop(ref) for ref in control.references],
        "target": {
            "type": "objective-id",
            "target-id": f"{control.id}_obj",
            "status": _without_empty(
                {
                    "state": "satisfied" if satisfied else "not-satisfied",
                    "reason": reason,
                    "remarks": _why(row),
                }
            ),
        },
        "related-observations": [{"observation-uuid": observation_uuid}],
        **({"remarks": _governed(row)} if row["attestation_id"] or row["exception_id"] else {}),
    }


def _why(row: dict[str, Any]) -> str:
    if not row["status"]:
        return row["detail"]
    return f"{row['reason']}: {row['detail']}" if row["detail"] else row["reason"]


def _governed(row: dict[str, Any]) -> str:
    if row["attestation_id"]:
        return (
            f"Attested (attestation {row['attestation_id']}) by {row['attested_by']} until "
            f"{row['attestation_expires_at']}: {row['attestation_statement']}"
        )
    return (
        f"Risk accepted by exception {row['exception_id']}, requested by {row['exception_requested_by']}, "
        f"approved by {row['exception_approved_by']}, owner {row['exception_owner']}, until "
        f"{row['exception_expires_at']}: {row['exception_justification']}. The control is not met."
    )


def _reference_prop(ref: Ref) -> dict[str, Any]:
    """`CIS 5.3.2` (closer fit) or the article's wording (as printed by Microsoft)."""
    value = ref.label() if ref.kind == PRINTED else f"{SHORT_NAMES.get(ref.framework, ref.framework)} {ref.section}"
    return {"name": "reference", "ns": OSCAL_NS, "value": value, "class": ref.kind, "group": ref.framework}


def _reference_link(ref: Ref) -> dict[str, Any]:
    return {"href": "#" + _uuid("framework", ref.framework), "rel": "reference", "text": ref.label()}


def _back_matter() -> dict[str, Any]:
    method = {
        "uuid": _uuid("method"),
        "title": "Arc Posture automated assessment",
        "description": (
            "Arc Posture reads Azure Resource Graph and Resource Manager (read-only), evaluates each "
            "control of its catalog on each cluster, and records attestations (manual checks) and "
            "risk exceptions approved by an administrator."
        ),
        "props": [_prop("catalog-version", CATALOG_VERSION)],
    }
    frameworks = [
        {
            "uuid": _uuid("framework", framework.id),
            "title": f"{framework.title} ({framework.version})",
            "description": framework.description or framework.title,
            "props": [_prop("framework-id", framework.id), _prop("mapping", framework.kind)],
            "rlinks": [{"href": framework.url}],
        }
        for framework in FRAMEWORKS.values()
    ]
    return {"resources": [method, *frameworks]}


def _prop(name: str, value: Any, *, ours: bool = True) -> dict[str, Any] | None:
    """A prop, or None for a value OSCAL props cannot hold (blank, or not a trimmed line)."""
    text = "" if value is None else str(value)
    if not PROP_VALUE.fullmatch(text):
        return None
    return {"name": name, "ns": OSCAL_NS, "value": text} if ours else {"name": name, "value": text}


def _line(text: str) -> str | None:
    return text if PROP_VALUE.fullmatch(text) else None


def _without_empty(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value not in (None, "", [])}


def _key(row: dict[str, Any]) -> str:
    return f"{row['arm_id'].lower()}|{row['control']}|{row['scan_id']}|{row['since']}"


def _cluster_uuid(row: dict[str, Any]) -> str:
    return _uuid("cluster", row["arm_id"].lower())  # the cluster's key: its lower-cased ARM id


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, "|".join(parts)))


def _iso(moment: dt.datetime) -> str:
    """UTC, milliseconds at most (OSCAL's date-time keeps no finer precision reliably)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(item: dict[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
