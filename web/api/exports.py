"""Exports through the API: start one, poll it, download it. The same functions as the Exports
page (posture.exports.jobs.request_export writes the audit row and queues the build); the API
always builds in the background, so a client polls every export the same way."""

from __future__ import annotations

import uuid

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from posture import tokens
from posture.exports import jobs
from posture.exports.errors import ExportError
from posture.exports.filters import ExportFilters
from posture.exports.registry import export_type, formats, kinds
from posture.models import Export
from web.api import serializers as out
from web.api.base import EXPORT, MANAGE_USERS, ApiListView, ApiView, found
from web.api.pagination import KeysetPagination
from web.views.exports import download_name

CONTENT_TYPES = sorted({export_type(kind, fmt).content_type.split(";")[0] for kind in kinds() for fmt in formats(kind)})


class ExportAccess:
    token_scope = tokens.EXPORT
    required_perms = (EXPORT,)

    def own_export(self, request: Request, export_id: str) -> Export:
        """The export, for its creator or an admin; anyone else gets the 404 of no export (as on
        the Exports page)."""
        try:
            export = Export.objects.filter(pk=uuid.UUID(export_id)).first()
        except ValueError:
            export = None
        if export is not None and export.requested_by_id != request.user.pk and not request.user.has_perm(MANAGE_USERS):
            export = None
        return found(export, "export")


class ExportList(ExportAccess, ApiListView):
    """GET: your exports, newest first. POST: start one (audited as on the Exports page)."""

    pagination_class = KeysetPagination
    serializer_class = out.ExportSerializer

    def keyset_sort(self) -> str:
        return "-created_at"

    def keyset_context(self) -> str:
        return str(self.request.user.pk)

    def get(self, request: Request) -> Response:
        return self.paginate(Export.objects.filter(requested_by=request.user))

    @extend_schema(request=out.ExportRequestSerializer, responses={202: out.ExportSerializer})
    def post(self, request: Request) -> Response:
        given = out.ExportRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        kind, fmt = given.validated_data["kind"], given.validated_data["format"]
        try:
            filters = ExportFilters.parse(given.validated_data["filters"])
            export_type(kind, fmt).check(filters)  # refused before any audit row, as export_to_file does
            export = jobs.request_export(user=request.user, kind=kind, fmt=fmt, filters=filters)
        except ExportError as exc:
            raise exceptions.ValidationError({"filters": [str(exc)]}) from None
        body = out.ExportSerializer(export, context=self.get_serializer_context()).data
        return Response(body, status=202, headers={"Location": reverse("api:export-detail", args=[export.pk])})


class ExportDetail(ExportAccess, ApiView):
    """One export's state and progress; `download` is set once it has a file."""

    serializer_class = out.ExportSerializer

    def get(self, request: Request, export_id: str) -> Response:
        return Response(out.ExportSerializer(self.own_export(request, export_id), context=self.get_serializer_context()).data)


class ExportDownload(ExportAccess, ApiView):
    """The built file, with its SHA-256 in X-Content-SHA256."""

    problem_statuses = {"404": "No such export, or it has no file (not built yet, failed or expired)"}

    @extend_schema(responses={(200, ct): OpenApiResponse(OpenApiTypes.BINARY, description="The file") for ct in CONTENT_TYPES})
    def get(self, request: Request, export_id: str) -> FileResponse:
        export = self.own_export(request, export_id)
        if export.state != Export.State.SUCCEEDED or not export.file_name:
            raise exceptions.NotFound("This export has no file to download yet.")
        if export.expires_at is not None and export.expires_at <= timezone.now():
            raise exceptions.NotFound("This export has expired.")
        as_type = export_type(export.kind, export.format)
        response = FileResponse(
            jobs.export_file(export),
            as_attachment=True,
            filename=download_name(export, as_type.extension),
            content_type=as_type.content_type,
        )
        response["X-Content-SHA256"] = export.sha256
        return response
