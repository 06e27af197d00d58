"""GET /api/v1/changes over HTTP: pages walk the feed while changes keep landing, each change
seen once; a cursor the feed did not issue is a 400 problem, a pruned one a 410 problem."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posture import tokens
from posture.feed.prune import prune
from posture.models import ChangeEvent
from posture.scans.evaluation import evaluate_scope
from tests.posture.test_change_feed import HOSTILE, fleet, flip, publish_at

pytestmark = pytest.mark.django_db
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "errors"}


@pytest.fixture
def pull(viewer: Any) -> Any:
    raw = tokens.issue(viewer, "siem", scopes=[tokens.READ])[1]

    def get(**params: Any) -> Any:
        return Client().get(reverse("api:changes"), params, HTTP_AUTHORIZATION=f"Bearer {raw}")

    return get


def test_a_client_paging_while_changes_land_sees_each_once_with_hostile_names_verbatim(pull: Any) -> None:
    scope, clusters = fleet("alpha", 6, hostile=True)
    flip(clusters[:3])
    evaluate_scope(scope.pk)
    seen: list[dict[str, Any]] = []
    cursor, landed = None, False
    while True:
        answer = pull(limit=2, **({"after": cursor} if cursor else {}))
        assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
        body = answer.json()
        seen += body["results"]
        cursor = body["next_cursor"]
        if not landed:  # a re-evaluation lands between two pages
            flip(clusters[3:])
            evaluate_scope(scope.pk)
            landed = True
        if not body["has_more"]:
            break
    assert len(seen) == ChangeEvent.objects.count() == 6
    assert len({e["cursor"] for e in seen}) == 6 and {e["cluster_id"] for e in seen} == {c.pk for c in clusters}
    assert HOSTILE in {e["cluster_name"] for e in seen}
    idle = pull(after=cursor).json()
    assert (idle["results"], idle["next_cursor"], idle["has_more"]) == ([], cursor, False)


@pytest.mark.parametrize(
    ("params", "attr"), [({"after": "forged"}, "after"), ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"since": "1"}, "since")]
)
def test_a_bad_cursor_limit_or_parameter_is_a_400_problem_naming_it(pull: Any, params: dict[str, str], attr: str) -> None:
    answer = pull(**params)
    assert answer.status_code == 400 and answer["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert set(body) == PROBLEM_KEYS and [e["attr"] for e in body["errors"]] == [attr]


def test_a_cursor_before_pruned_changes_is_410_gone(pull: Any, settings: Any) -> None:
    settings.ARC_FEED_RETENTION_DAYS = 30
    _, (cluster, *_) = fleet("alpha", 1)
    publish_at(cluster, timezone.now() - dt.timedelta(days=40), 2)
    publish_at(cluster, timezone.now(), 1)
    first = pull(limit=1).json()["next_cursor"]
    assert prune(timezone.now()) == 2
    answer = pull(after=first)
    assert answer.status_code == 410 and answer["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"][0]["code"] == "cursor_expired" and "start again" in answer.json()["detail"]
    assert [e["control"] for e in pull().json()["results"]] == ["C-0"]  # starting again finds what is kept
