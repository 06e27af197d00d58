"""What every API view shares: token or session authentication, the role permission narrowed by
the token's scopes, the per-token rate limit, strict query parameters, and no login redirect.

A new endpoint (the change feed, say) subclasses ApiView, or ApiListView with a keyset
pagination (web/api/pagination.py), sets `token_scope` and `required_perms`, and declares its
query parameters as a serializer in `query_serializer`. DRF (3.15+) marks its views
login_not_required itself, so the site's LoginRequiredMiddleware never redirects an API call:
an anonymous one gets a 401 problem from the authenticators.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, generics, mixins, serializers
from rest_framework.request import Request

from posture import tokens
from posture.models import Scope
from web.api.access import EXPORT, MANAGE_USERS, VIEW, PostureAccess, TokenRateThrottle  # noqa: F401  (re-exported)


class NoQuery(serializers.Serializer):
    """An endpoint without query parameters."""


class ApiView(generics.GenericAPIView):
    token_scope = tokens.READ
    required_perms: tuple[str, ...] = ()
    query_serializer: type[serializers.Serializer] = NoQuery
    # Extra problem answers for the OpenAPI document (status → description; web/api/schema.py).
    problem_statuses: dict[str, str] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.query = self.parse_query(request)

    def allowed_query(self) -> set[str]:
        names = set(self.query_serializer().fields)
        if self.paginator is not None:
            names |= set(getattr(self.paginator, "query_names", ()))
        return names

    def parse_query(self, request: Request) -> dict[str, Any]:
        """The query string, validated: an unknown or repeated parameter or a bad value is a 400
        naming it, never ignored (a typo in a filter must not widen the answer)."""
        params = request.query_params
        problems: dict[str, list[str]] = {}
        for name in sorted(set(params) - self.allowed_query()):
            problems[name[:100]] = ["Unknown query parameter."]
        for name in params:
            if len(params.getlist(name)) > 1:
                problems[name[:100]] = ["Give this parameter once."]
        if problems:
            raise exceptions.ValidationError(problems)
        serializer = self.query_serializer(data={k: v for k, v in params.items() if k in self.query_serializer().fields})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class ApiListView(mixins.ListModelMixin, ApiView):
    """A list paged by a keyset cursor: `paginate(queryset)` gives the answer. (ListModelMixin only
    tells drf-spectacular it is a list: paged, with its own operation id.)"""

    def paginate(self, queryset: Any) -> Any:
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def scope_field() -> serializers.CharField:
    return serializers.CharField(required=False, max_length=63, help_text="A scope's name: only its clusters (default: every scope)")


def known_scope(name: str) -> str:
    """`name`, if a scope is called that (else a 400 naming the parameter)."""
    if name and not Scope.objects.filter(name=name).exists():
        raise exceptions.ValidationError({"scope": [f"No scope is called {name!r}."]})
    return name


def number(text: str) -> int:
    """A path's integer id; anything else finds nothing (routes take strings, so that a
    malformed id gets this API's 404 problem rather than the site's HTML page)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else 0


def found(item: Any, what: str) -> Any:
    if item is None:
        raise exceptions.NotFound(f"No such {what}.")
    return item
