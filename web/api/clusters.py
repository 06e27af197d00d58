"""Clusters: the list with the clusters page's own filters (web.forms.ClusterFilterForm, strict
here: an unknown parameter or a bad value is a 400), paged by keyset; one cluster with its
results, evidence and references."""

from __future__ import annotations

from typing import Any

from django import forms
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from posture.catalog.controls import CONTROLS_BY_ID
from posture.models import Scope
from posture.read import clusters as read
from posture.read.cache import cached
from posture.read.fleet import fleet_state
from web.api.base import ApiListView, ApiView, found, number
from web.api.pagination import KeysetPagination
from web.api.serializers import ClusterDetailSerializer, ClusterSerializer
from web.forms import ClusterFilterForm

# The page's own fields, minus its paging (the API pages by cursor).
PAGE_ONLY = ("per_page",)


def _query_field(field: forms.Field) -> serializers.Field:
    """The serializer field standing for one of the page's form fields (the schema and the types);
    the form itself then checks the values as the page does."""
    common = {"required": False, "help_text": str(field.label or "")}
    if isinstance(field, forms.BooleanField):
        return serializers.BooleanField(**common)
    choices = [value for value, _ in getattr(field, "choices", []) if value != ""]
    if choices:  # fixed choices (grade, control, sort…); scope and the Azure-valued ones are filled per request
        return serializers.ChoiceField(choices=choices, **common)
    return serializers.CharField(max_length=getattr(field, "max_length", None) or 1024, allow_blank=True, **common)


_FORM_FIELDS = ClusterFilterForm(options={}, scopes=[]).fields
ClusterQuery = type(
    "ClusterQuery",
    (serializers.Serializer,),
    {name: _query_field(field) for name, field in _FORM_FIELDS.items() if name not in PAGE_ONLY},
)


def scope_names() -> dict[int, str]:
    return dict(Scope.objects.values_list("pk", "name"))


class ClusterList(ApiListView):
    """Clusters, filtered and sorted as on the clusters page."""

    query_serializer = ClusterQuery
    pagination_class = KeysetPagination
    serializer_class = ClusterSerializer

    def keyset_sort(self) -> str:
        return self.filters["sort"]

    def keyset_context(self) -> str:
        return repr(sorted((k, v) for k, v in self.filters.items() if k != "sort"))

    @extend_schema(parameters=[ClusterQuery], operation_id="clusters_list")
    def get(self, request: Request) -> Response:
        state = fleet_state(scope_name=self.query.get("scope") or None)
        form = ClusterFilterForm(
            {k: v for k, v in request.query_params.items() if k in _FORM_FIELDS},
            options=read.cluster_filter_options(version=state.version),
            scopes=state.scope_names,
        )
        if not form.is_valid():
            raise exceptions.ValidationError({name: [str(e) for e in errors] for name, errors in form.errors.items()})
        self.filters = form.filters()

        def page() -> tuple[list[Any], str | None]:
            rows = self.paginate_queryset(read.cluster_list(**self.filters))
            return list(self.get_serializer(rows, many=True).data), self.paginator.next_cursor

        # As on the clusters page, a page of rows changes only when an evaluation runs: it is
        # cached per fleet version and validated filters, cursor and limit (a bad cursor or limit
        # raises before anything is cached). Sorting 50,000 rows by score, or a name search,
        # costs PostgreSQL tens of ms that a SIEM polling the same view would pay every time.
        query = self.request.query_params
        key = f"api:clusters|{sorted(self.filters.items())}|{query.get('cursor')}|{query.get('limit')}"
        data, next_cursor = cached(key, state.version, page)
        self.paginator.request, self.paginator.next_cursor = request, next_cursor
        return self.get_paginated_response(data)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "scope_names": scope_names()}


class ClusterDetail(ApiView):
    """One cluster: its results with their evidence and references, the raw responses that
    evidence them, and the attestations and exceptions that cover it."""

    serializer_class = ClusterDetailSerializer

    def get(self, request: Request, pk: str) -> Response:
        cluster = found(read.cluster_get(pk=number(pk), latest_scan=False), "cluster")
        results = read.cluster_results(cluster=cluster)
        cluster.api_results = [results[c] for c in CONTROLS_BY_ID if c in results]
        cluster.api_evidence = read.cluster_evidence(cluster=cluster)
        cluster.api_attestations, cluster.api_exceptions = read.cluster_governance(cluster=cluster)
        context = {**self.get_serializer_context(), "scope_names": {cluster.scope_id: cluster.scope.name}, "controls": CONTROLS_BY_ID}
        return Response(ClusterDetailSerializer(cluster, context=context).data)
