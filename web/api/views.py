"""The fleet, scopes, scans, the catalog (controls, frameworks and sections with their counts),
attestations and exceptions: thin views over posture.read, as the pages use it."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from posture.catalog.controls import CONTROLS, CONTROLS_BY_ID
from posture.catalog.frameworks import FRAMEWORKS
from posture.evaluate.scoring import SECTION_CONTROLS
from posture.models import RiskException, Scan, Status
from posture.read import governance as governance_read
from posture.read import scans as scans_read
from posture.read.fleet import FleetState, fleet_state, fleet_trend, scopes_annotated
from posture.scans.progress import scan_progress
from web.api import serializers as out
from web.api.base import ApiListView, ApiView, found, known_scope, number, scope_field
from web.api.pagination import KeysetPagination

CONTROL_IDS = [c.id for c in CONTROLS]


class ScopeQuery(serializers.Serializer):
    scope = scope_field()


def _state(query: dict[str, Any]) -> FleetState:
    return fleet_state(scope_name=known_scope(query.get("scope", "")) or None)


class FleetSummaryView(ApiView):
    """The latest evaluation of every scope (or of one), summed as on the overview page."""

    query_serializer = ScopeQuery
    serializer_class = out.FleetSummarySerializer

    @extend_schema(parameters=[ScopeQuery])
    def get(self, request: Request) -> Response:
        state = _state(self.query)
        summary = state.latest
        summary.scope = state.selected.name if state.selected else None  # type: ignore[attr-defined]
        return Response(out.FleetSummarySerializer(summary).data)


class FleetTrendView(ApiView):
    """Score, coverage and clusters after each evaluation (the overview's trend), oldest first."""

    query_serializer = ScopeQuery
    serializer_class = out.TrendPointSerializer

    @extend_schema(parameters=[ScopeQuery], responses=out.TrendPointSerializer(many=True))
    def get(self, request: Request) -> Response:
        state = _state(self.query)
        points = fleet_trend(scope_ids=state.scope_ids) if state.latest.exists else []
        return Response(out.TrendPointSerializer(points, many=True).data)


class ScopeList(ApiView):
    serializer_class = out.ScopeSerializer

    @extend_schema(responses=out.ScopeSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(out.ScopeSerializer(scopes_annotated(), many=True).data)


class ScanQuery(serializers.Serializer):
    scope = scope_field()
    state = serializers.ChoiceField(choices=Scan.State.values, required=False)


class ScanList(ApiListView):
    """Scans, newest first, with their progress as the scan row counts it."""

    query_serializer = ScanQuery
    pagination_class = KeysetPagination
    serializer_class = out.ScanSerializer

    def keyset_sort(self) -> str:
        return "-created_at"

    def keyset_context(self) -> str:
        return repr(sorted(self.query.items()))

    @extend_schema(parameters=[ScanQuery])
    def get(self, request: Request) -> Response:
        return self.paginate(scans_read.scan_list(scope=known_scope(self.query.get("scope", "")), state=self.query.get("state", "")))


class ScanDetail(ApiView):
    """One scan with its live progress (running batches included)."""

    serializer_class = out.ScanSerializer

    def get(self, request: Request, scan_id: str) -> Response:
        try:
            scan = scans_read.scan_get(scan_id=uuid.UUID(scan_id))
        except ValueError:
            scan = None
        scan = found(scan, "scan")
        progress = scan_progress(scan.pk)
        live = {name: getattr(progress, name) for name in out.ProgressSerializer().fields if name != "fraction"}
        context = {**self.get_serializer_context(), "progress": {scan.pk: {**live, "fraction": round(progress.fraction, 4)}}}
        return Response(out.ScanSerializer(scan, context=context).data)


class ControlList(ApiView):
    """The catalog's controls with the latest clusters per status."""

    query_serializer = ScopeQuery
    serializer_class = out.ControlSerializer

    @extend_schema(parameters=[ScopeQuery], responses=out.ControlSerializer(many=True))
    def get(self, request: Request) -> Response:
        context = {"summary": _state(self.query).latest}
        return Response(out.ControlSerializer(CONTROLS, many=True, context=context).data)


class ControlDetail(ApiView):
    query_serializer = ScopeQuery
    serializer_class = out.ControlSerializer

    @extend_schema(parameters=[ScopeQuery])
    def get(self, request: Request, control_id: str) -> Response:
        control = found(CONTROLS_BY_ID.get(control_id), "control")
        return Response(out.ControlSerializer(control, context={"summary": _state(self.query).latest}).data)


def _framework_row(framework: Any, summary: Any) -> Any:
    failing = sum(1 for s in framework.sections if summary.section_counts(framework.id, s.id).get(Status.FAIL))
    framework_row = {f: getattr(framework, f) for f in ("id", "title", "version", "url", "kind")}
    return {**framework_row, "section_count": len(framework.sections), "failing_sections": failing}


class FrameworkList(ApiView):
    """The benchmarks: each framework with its sections and how many fail (the benchmarks page)."""

    query_serializer = ScopeQuery
    serializer_class = out.FrameworkSerializer

    @extend_schema(parameters=[ScopeQuery], responses=out.FrameworkSerializer(many=True))
    def get(self, request: Request) -> Response:
        summary = _state(self.query).latest
        return Response(out.FrameworkSerializer([_framework_row(f, summary) for f in FRAMEWORKS.values()], many=True).data)


class FrameworkDetailSerializer(out.FrameworkSerializer):
    sections = out.SectionSerializer(many=True, source="sections_full")


class FrameworkDetail(ApiView):
    """One framework's sections, each with the controls citing it and clusters per status."""

    query_serializer = ScopeQuery
    serializer_class = FrameworkDetailSerializer

    @extend_schema(parameters=[ScopeQuery])
    def get(self, request: Request, framework: str) -> Response:
        fw = found(FRAMEWORKS.get(framework), "framework")
        summary = _state(self.query).latest
        row = {**_framework_row(fw, summary), "sections_full": fw.sections}
        context = {"summary": summary, "framework": fw.id, "section_controls": SECTION_CONTROLS}
        return Response(FrameworkDetailSerializer(row, context=context).data)


class GovernanceQuery(serializers.Serializer):
    control = serializers.ChoiceField(choices=CONTROL_IDS, required=False)


class AttestationQuery(GovernanceQuery):
    state = serializers.ChoiceField(choices=["active", "expired", "expiring", "revoked"], required=False)


class ExceptionQuery(GovernanceQuery):
    state = serializers.ChoiceField(choices=["active", "expired", "expiring", *RiskException.State.values], required=False)


class AttestationList(ApiListView):
    """Attestations, newest first, in a state of the attestations page."""

    query_serializer = AttestationQuery
    pagination_class = KeysetPagination
    serializer_class = out.AttestationSerializer

    def keyset_sort(self) -> str:
        return "-created_at"

    def keyset_context(self) -> str:
        return repr(sorted(self.query.items()))

    @extend_schema(parameters=[AttestationQuery])
    def get(self, request: Request) -> Response:
        return self.paginate(governance_read.attestation_list(state=self.query.get("state", ""), control=self.query.get("control", "")))


class AttestationDetail(ApiView):
    serializer_class = out.AttestationSerializer

    def get(self, request: Request, pk: str) -> Response:
        return Response(out.AttestationSerializer(found(governance_read.attestation_get(pk=number(pk)), "attestation")).data)


class ExceptionList(ApiListView):
    """Exceptions, newest request first, in a state of the exceptions page."""

    query_serializer = ExceptionQuery
    pagination_class = KeysetPagination
    serializer_class = out.ExceptionSerializer

    def keyset_sort(self) -> str:
        return "-requested_at"

    def keyset_context(self) -> str:
        return repr(sorted(self.query.items()))

    @extend_schema(parameters=[ExceptionQuery])
    def get(self, request: Request) -> Response:
        return self.paginate(governance_read.exception_list(state=self.query.get("state", ""), control=self.query.get("control", "")))


class ExceptionDetail(ApiView):
    serializer_class = out.ExceptionSerializer

    def get(self, request: Request, pk: str) -> Response:
        return Response(out.ExceptionSerializer(found(governance_read.exception_get(pk=number(pk)), "exception")).data)


class NotFound(ApiView):
    """Any other path under /api/v1/: a problem, not the site's HTML page."""

    schema = None  # not an operation

    def get(self, request: Request, rest: str) -> Response:
        raise exceptions.NotFound("No such API endpoint; see /api/v1/docs/.")

    post = put = patch = delete = get
