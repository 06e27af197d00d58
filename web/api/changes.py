"""GET /api/v1/changes: the change feed for SIEM pulls (posture/feed/, docs/change-feed.md).

Its cursor is the feed's own, not the keyset pagination of the lists: a feed position survives
new entries landing, which is the point of pulling `after` it.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from posture.feed.read import MAX_LIMIT, BadCursor, CursorExpired, changes_after
from posture.models import Status
from web.api.base import ApiView


class Gone(exceptions.APIException):
    status_code = 410
    default_detail = "The changes after this cursor are no longer kept; start again without `after`."
    default_code = "cursor_expired"


class ChangeQuery(serializers.Serializer):
    after = serializers.CharField(
        required=False, max_length=200, help_text="The `next_cursor` of the previous page; omitted: from the oldest change kept"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=100)


class ChangeSerializer(serializers.Serializer):
    cursor = serializers.CharField(help_text="This change's position: `after` it gives what follows")
    at = serializers.DateTimeField()
    cluster_id = serializers.IntegerField()
    cluster_name = serializers.CharField(help_text="As Azure names it (untrusted text)")
    resource_id = serializers.CharField()
    scope = serializers.CharField()
    control = serializers.CharField()
    from_status = serializers.ChoiceField(choices=Status.values)
    to_status = serializers.ChoiceField(choices=Status.values)
    scan_id = serializers.UUIDField(allow_null=True, help_text="The scan that found it; null for a re-evaluation")


class ChangePageSerializer(serializers.Serializer):
    results = ChangeSerializer(many=True, help_text="Oldest first")
    next_cursor = serializers.CharField(help_text="Pass as `after`; the same cursor when nothing is new yet")
    has_more = serializers.BooleanField(help_text="More changes are waiting: ask again at once")


class ChangeFeed(ApiView):
    """Every control status change, each exactly once, in the order it became visible; pages
    stay exact while scans keep landing. Keep `next_cursor` and ask again later."""

    query_serializer = ChangeQuery
    serializer_class = ChangePageSerializer
    problem_statuses = {"410": "The changes after `after` were pruned (ARC_FEED_RETENTION_DAYS); start again without it"}

    @extend_schema(parameters=[ChangeQuery])
    def get(self, request: Request) -> Response:
        try:
            page = changes_after(self.query.get("after"), self.query["limit"])
        except BadCursor as exc:
            raise exceptions.ValidationError({"after": [str(exc)]}) from exc
        except CursorExpired as exc:
            raise Gone() from exc
        body = {"results": page.entries, "next_cursor": page.next_cursor, "has_more": page.has_more}
        return Response(ChangePageSerializer(body).data)
