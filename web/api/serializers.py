"""What the API answers: read-only serializers over the models and the catalog. Strings from
Azure go out verbatim; JSON encoding is their only escaping (a client renders them as it must)."""

from __future__ import annotations

import functools
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from posture.catalog.controls import CONTROLS_BY_ID
from posture.catalog.frameworks import FRAMEWORKS
from posture.models import Attestation, Cluster, ControlResult, Export, RiskException, Scan, Scope
from posture.scans.progress import error_for_role

MANAGE_SCOPES = "posture.manage_scopes"


def _counts(help_text: str = "status → clusters") -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=help_text)


# --- fleet ---------------------------------------------------------------------------------------
class FleetSummarySerializer(serializers.Serializer):
    scope = serializers.CharField(allow_null=True, help_text="The scope asked for; null: every scope")
    evaluated_at = serializers.DateTimeField(allow_null=True, source="created_at", help_text="The newest evaluation summed here")
    clusters = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True)
    grade = serializers.CharField()
    coverage = serializers.FloatField(allow_null=True)
    grades = _counts("grade → clusters")
    paths = _counts("network path → clusters")
    connectivity = _counts("connectivity status → clusters")
    controls = serializers.DictField(child=_counts(), help_text="control → status → clusters")


class TrendPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    score = serializers.FloatField(allow_null=True)
    coverage = serializers.FloatField(allow_null=True)
    clusters = serializers.IntegerField()


class ScopeSerializer(serializers.ModelSerializer):
    subscriptions = serializers.ListField(child=serializers.CharField())
    management_groups = serializers.ListField(child=serializers.CharField())
    last_scan = serializers.SerializerMethodField()

    class Meta:
        model = Scope
        fields = ("name", "tenant_id", "cloud", "subscriptions", "management_groups", "schedule", "enabled", "created_at", "last_scan")

    def get_last_scan(self, scope: Scope) -> str | None:
        scan_id = getattr(scope, "last_scan_id", None)
        return str(scan_id) if scan_id else None


# --- scans ---------------------------------------------------------------------------------------
class ProgressSerializer(serializers.Serializer):
    state = serializers.CharField()
    fraction = serializers.FloatField(min_value=0, max_value=1)
    batches_total = serializers.IntegerField()
    batches_finished = serializers.IntegerField()
    requests = serializers.IntegerField()
    pages = serializers.IntegerField()
    rows = serializers.IntegerField()
    clusters = serializers.IntegerField()
    throttled = serializers.IntegerField()
    quota_wait_seconds = serializers.FloatField()


class ScanSerializer(serializers.ModelSerializer):
    scope = serializers.SlugRelatedField(slug_field="name", read_only=True)
    error = serializers.SerializerMethodField(help_text="Admins read the stored error; other roles a phrasing for them")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Scan
        fields = (
            "id", "scope", "state", "trigger", "created_at", "started_at", "finished_at", "error", "subscriptions",
            "batches_total", "batches_done", "batches_failed", "clusters_removed", "progress",
        )  # fmt: skip

    def get_error(self, scan: Scan) -> str:
        user = self.context["request"].user
        return scan.error if user.has_perm(MANAGE_SCOPES) else error_for_role(scan.error)

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, scan: Scan) -> dict[str, Any]:
        progress = self.context.get("progress", {}).get(scan.pk)
        if progress is None:  # a list: the scan row's own counters (a detail reads running batches too)
            progress = {
                "state": scan.state,
                "batches_total": scan.batches_total,
                "batches_finished": scan.batches_done + scan.batches_failed,
                **{name: getattr(scan, name) for name in ("requests", "pages", "rows", "clusters", "throttled", "quota_wait_seconds")},
            }
            progress["fraction"] = 1.0 if scan.state in Scan.FINISHED_STATES else 0.0
            if progress["batches_total"] and scan.state not in Scan.FINISHED_STATES:
                progress["fraction"] = min(progress["batches_finished"] / progress["batches_total"], 1.0)
        return ProgressSerializer(progress).data


# --- clusters ------------------------------------------------------------------------------------
class ClusterSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()
    tags = serializers.JSONField(help_text="As Azure reports them")

    class Meta:
        model = Cluster
        fields = (
            "id", "name", "scope", "subscription_id", "resource_group", "location", "tags", "distribution", "infrastructure",
            "connectivity_status", "last_connectivity_at", "network_path", "score", "grade", "coverage", "failing", "removed_at",
        )  # fmt: skip

    def get_scope(self, cluster: Cluster) -> str:
        return self.context["scope_names"].get(cluster.scope_id, "")


class ReferenceSerializer(serializers.Serializer):
    framework = serializers.CharField()
    section = serializers.CharField()
    kind = serializers.CharField(help_text="printed: as Microsoft prints it; closer: a closer fit")
    title = serializers.SerializerMethodField()

    def get_title(self, ref: Any) -> str:
        return FRAMEWORKS[ref.framework].section(ref.section).title


class ResultSerializer(serializers.ModelSerializer):
    evidence = serializers.JSONField(help_text="What the verdict rests on")
    title = serializers.SerializerMethodField()
    severity = serializers.SerializerMethodField()
    references = serializers.SerializerMethodField()

    class Meta:
        model = ControlResult
        fields = (
            "control", "title", "severity", "status", "raw_status", "reason", "detail", "evidence", "since", "attestation",
            "exception", "references",
        )  # fmt: skip

    def _control(self, result: ControlResult) -> Any:
        return self.context["controls"][result.control]

    def get_title(self, result: ControlResult) -> str:
        return self._control(result).title

    def get_severity(self, result: ControlResult) -> str:
        return self._control(result).severity

    @extend_schema_field(ReferenceSerializer(many=True))
    def get_references(self, result: ControlResult) -> list[dict[str, Any]]:
        return _references(result.control)


@functools.cache
def _references(control_id: str) -> list[dict[str, Any]]:
    """A control's references, serialized once per process: the catalog is code, and serializing
    them again for each of a cluster's 15 results was a fifth of its API answer's CPU."""
    return ReferenceSerializer(CONTROLS_BY_ID[control_id].references, many=True).data


class EvidenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    requests = serializers.IntegerField()
    rows = serializers.IntegerField()
    sha256 = serializers.CharField()


class GovernanceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    control = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ClusterDetailSerializer(ClusterSerializer):
    results = ResultSerializer(many=True, source="api_results")
    evidence = EvidenceSerializer(many=True, source="api_evidence", help_text="Raw responses of the batch that read the cluster")
    attestations = GovernanceRefSerializer(many=True, source="api_attestations")
    exceptions = GovernanceRefSerializer(many=True, source="api_exceptions")

    class Meta(ClusterSerializer.Meta):
        fields = (
            *ClusterSerializer.Meta.fields, "arm_id", "kind", "first_seen_at", "last_seen_at", "evaluated_at", "data_problems",
            "results", "evidence", "attestations", "exceptions",
        )  # fmt: skip


# --- catalog -------------------------------------------------------------------------------------
class ControlSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    severity = serializers.CharField()
    recommendation = serializers.CharField()
    source = serializers.CharField()
    rationale = serializers.CharField()
    attestable = serializers.BooleanField()
    references = ReferenceSerializer(many=True)
    counts = serializers.SerializerMethodField()

    @extend_schema_field(_counts())
    def get_counts(self, control: Any) -> dict[str, int]:
        return self.context["summary"].control_counts(control.id)


class SectionSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    controls = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_controls(self, section: Any) -> list[str]:
        return self.context["section_controls"].get((self.context["framework"], section.id), [])

    @extend_schema_field(_counts())
    def get_counts(self, section: Any) -> dict[str, int]:
        return self.context["summary"].section_counts(self.context["framework"], section.id)


class FrameworkSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    version = serializers.CharField()
    url = serializers.CharField()
    kind = serializers.CharField()
    section_count = serializers.IntegerField()
    failing_sections = serializers.IntegerField()


# --- governance ----------------------------------------------------------------------------------
class _TargetFields(serializers.ModelSerializer):
    cluster = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)


class AttestationSerializer(_TargetFields):
    attested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    revoked_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Attestation
        fields = (
            "id", "control", "cluster", "subscription_id", "resource_group", "tag_key", "tag_value", "statement", "evidence_url",
            "attested_by", "created_at", "expires_at", "revoked_at", "revoked_by",
        )  # fmt: skip


class ExceptionSerializer(_TargetFields):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RiskException
        fields = (
            "id", "control", "cluster", "subscription_id", "resource_group", "tag_key", "tag_value", "justification", "owner",
            "state", "requested_by", "requested_at", "expires_at", "decided_by", "decided_at", "decision_note",
        )  # fmt: skip


# --- exports -------------------------------------------------------------------------------------
class ExportRequestSerializer(serializers.Serializer):
    kind = serializers.CharField(max_length=16)
    format = serializers.CharField(max_length=16)
    filters = serializers.DictField(
        child=serializers.JSONField(), required=False, default=dict, help_text='The export filters of docs/exports.md, e.g. {"grade": "F"}'
    )


class ExportSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ("id", "kind", "format", "filters", "as_of", "state", "rows", "sha256", "size", "error", "created_at", "finished_at",
                  "expires_at", "progress", "download")  # fmt: skip

    def get_progress(self, export: Export) -> float:
        if export.state == Export.State.SUCCEEDED:
            return 1.0
        return round(min(export.progress_done / export.progress_total, 1.0), 4) if export.progress_total else 0.0

    def get_download(self, export: Export) -> str | None:
        if export.state != Export.State.SUCCEEDED or not export.file_name:
            return None
        return self.context["request"].build_absolute_uri(reverse("api:export-download", args=[export.pk]))
