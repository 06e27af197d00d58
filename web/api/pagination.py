"""Keyset ("cursor") pagination over a sort column and the primary key.

Not DRF's CursorPagination: it pages on the first ordering field and steps over ties with an
offset, and a filter such as `score > x` silently drops rows whose column is NULL, so a list
sorted by score, coverage or last contact would lose its clusters without one. Here the position
is the last row's (column value, pk): the next page is the rows after it in
`column ASC|DESC NULLS LAST, pk ASC` order (posture/read/clusters.py sorts the page the same
way), so rows inserted or removed meanwhile never make a page repeat or skip another.

The cursor is signed (django.core.signing) and bound to the sort and the filters it was issued
for: it is opaque to clients, and one from another list or query is a 400, never a wrong page.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core import signing
from django.db.models import F, Model, Q, QuerySet
from rest_framework import exceptions
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

SALT = "web.api.cursor"
DEFAULT_LIMIT, MAX_LIMIT = 100, 500


def _bad(name: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({name: [message]})


class KeysetPagination(BasePagination):
    """The view says how its list is sorted: `keyset_sort()` → "column" or "-column", and what
    binds a cursor: `keyset_context()` → a string (its filters)."""

    query_names = ("cursor", "limit")

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: Any = None) -> list[Any]:
        self.request = request
        sort = view.keyset_sort()
        self.column, self.descending = sort.lstrip("-"), sort.startswith("-")
        self.nullable = queryset.model._meta.get_field(self.column).null
        self.binding = hashlib.sha256(f"{queryset.model._meta.label}|{sort}|{view.keyset_context()}".encode()).hexdigest()[:16]
        limit = self._limit(request.query_params.get("limit"))
        order = (
            F(self.column).desc(nulls_last=self.nullable or None)
            if self.descending
            else F(self.column).asc(nulls_last=self.nullable or None)
        )
        queryset = queryset.order_by(order, "pk")
        cursor = request.query_params.get("cursor")
        if cursor:
            value, pk = self._decode(cursor, queryset.model)
            queryset = queryset.filter(self._after(value, pk))
        rows = list(queryset[: limit + 1])
        self.next_cursor = self._encode(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit]

    def _limit(self, given: str | None) -> int:
        if given is None:
            return DEFAULT_LIMIT
        if not given.isdigit() or not 1 <= int(given) <= MAX_LIMIT:
            raise _bad("limit", f"Give a whole number from 1 to {MAX_LIMIT}.")
        return int(given)

    def _after(self, value: Any, pk: Any) -> Q:
        """Rows after (value, pk) in `column ASC|DESC NULLS LAST, pk ASC` order."""
        column = self.column
        if value is None:  # among the trailing NULLs already
            return Q(**{f"{column}__isnull": True, "pk__gt": pk})
        beyond = Q(**{f"{column}__{'lt' if self.descending else 'gt'}": value}) | Q(**{column: value, "pk__gt": pk})
        if self.nullable:
            return beyond | Q(**{f"{column}__isnull": True})
        # A redundant bound an index on (column, id) can start its range scan from, so a deep
        # page does not read every row before it.
        return Q(**{f"{column}__{'lte' if self.descending else 'gte'}": value}) & beyond

    def _encode(self, row: Model) -> str:
        field = row._meta.get_field(self.column)
        value = field.value_to_string(row) if getattr(row, self.column) is not None else None
        return signing.dumps([self.binding, value, str(row.pk)], salt=SALT, compress=True)

    def _decode(self, cursor: str, model: type[Model]) -> tuple[Any, Any]:
        try:
            binding, value, pk = signing.loads(cursor[:2000], salt=SALT)
        except (signing.BadSignature, ValueError, TypeError):
            raise _bad("cursor", "This cursor is not one this API issued; start again without it.") from None
        if binding != self.binding:
            raise _bad("cursor", "This cursor belongs to another list, sort or filter; start again without it.")
        field, pk_field = model._meta.get_field(self.column), model._meta.pk
        return (None if value is None else field.to_python(value)), pk_field.to_python(pk)

    def get_paginated_response(self, data: Any) -> Response:
        url = self.request.build_absolute_uri()
        next_url = replace_query_param(url, "cursor", self.next_cursor) if self.next_cursor else None
        return Response({"next": next_url, "next_cursor": self.next_cursor, "results": data})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "next_cursor", "results"],
            "properties": {
                "next": {"type": "string", "format": "uri", "nullable": True, "description": "The next page; null on the last"},
                "next_cursor": {"type": "string", "nullable": True, "description": "Opaque: pass it as `cursor`"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Where the page starts: `next_cursor` of the page before (same sort and filters)",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Rows per page (default {DEFAULT_LIMIT})",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
        ]
