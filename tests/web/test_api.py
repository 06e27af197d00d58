"""The API's behaviour: filters as on the clusters page (refused, never ignored, when wrong),
cursor pages that walk a list once, Azure's strings returned verbatim, the problem shape, the
rate limit, exports audited as on the Exports page, and no token in any log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posture import tokens
from posture.catalog.controls import CONTROLS_BY_ID
from posture.models import Cluster, Export
from posture.read.clusters import cluster_list
from tests.web.conftest import HOSTILE
from web.api.access import TokenRateThrottle

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "errors"}


def get(raw: str, name: str, **params: Any) -> Any:
    return Client().get(reverse(f"api:{name}"), params, HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def token(analyst: Any) -> str:
    return tokens.issue(analyst, "siem")[1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"grade": "Z"}, "grade"),
        ({"sort": "-password"}, "sort"),
        ({"colour": "red"}, "colour"),
        ({"scope": "nowhere"}, "scope"),
        ({"removed": "perhaps"}, "removed"),
        ({"control": "ARC-XX-99"}, "control"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"subscription": "x" * 37}, "subscription"),
    ],
)
def test_a_bad_cluster_filter_is_a_400_naming_it(make_fleet: Any, token: str, params: dict[str, str], attr: str) -> None:
    make_fleet(2)
    response = get(token, "cluster-list", **params)
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) == PROBLEM_KEYS and problem["status"] == 400 and problem["title"] == "Bad Request"
    assert [e["attr"] for e in problem["errors"]] == [attr] and attr in problem["detail"]


@pytest.mark.django_db
def test_a_repeated_parameter_is_refused_not_half_read(make_fleet: Any, token: str) -> None:
    make_fleet(2)
    response = Client().get(reverse("api:cluster-list") + "?grade=A&grade=F", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and response.json()["errors"][0]["attr"] == "grade"


@pytest.mark.django_db
def test_filters_select_what_the_clusters_page_selects(make_fleet: Any, token: str) -> None:
    fleet = make_fleet(12)
    filters = {"location": "eastus", "tag": "env=prod", "sort": "-score", "q": "c0"}
    page = cluster_list(**filters)
    response = get(token, "cluster-list", **filters, scope=fleet.scope.name)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [c.pk for c in page] and page.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["name", "-name", "score", "-score", "coverage", "-last_connectivity_at", "failing", "-grade"])
def test_cursor_pages_walk_the_whole_list_once(make_fleet: Any, token: str, sort: str) -> None:
    fleet = make_fleet(11)
    # Ties and NULLs in the sort column: the keyset must step over them by pk.
    Cluster.objects.filter(pk__in=[c.pk for c in fleet.clusters[:4]]).update(score=None, coverage=None, last_connectivity_at=None)
    Cluster.objects.filter(pk__in=[c.pk for c in fleet.clusters[4:7]]).update(score=50.0, name="same")
    seen: list[int] = []
    params: dict[str, Any] = {"sort": sort, "limit": 3}
    for _ in range(10):
        body = get(token, "cluster-list", **params).json()
        seen += [c["id"] for c in body["results"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert sorted(seen) == sorted(c.pk for c in fleet.clusters) and len(seen) == len(set(seen))
    assert seen == [c.pk for c in cluster_list(sort=sort)]


@pytest.mark.django_db
def test_a_cursor_is_bound_to_its_sort_and_filters(make_fleet: Any, token: str) -> None:
    make_fleet(5)
    cursor = get(token, "cluster-list", sort="name", limit=2).json()["next_cursor"]
    assert get(token, "cluster-list", sort="name", limit=2, cursor=cursor).status_code == 200
    for other in ({"sort": "-name"}, {"sort": "name", "grade": "F"}):
        response = get(token, "cluster-list", limit=2, cursor=cursor, **other)
        assert response.status_code == 400 and "another list" in response.json()["detail"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert get(token, "cluster-list", sort="name", cursor=tampered).status_code == 400


@pytest.mark.django_db
def test_hostile_strings_from_azure_come_back_verbatim_in_json(make_fleet: Any, token: str) -> None:
    fleet = make_fleet(4, hostile=True)
    response = get(token, "cluster-list", limit=10)
    assert response["Content-Type"] == "application/json"
    names = {c["name"] for c in response.json()["results"]}
    assert set(HOSTILE) <= names
    detail = Client().get(reverse("api:cluster-detail", args=[fleet.clusters[1].pk]), HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert detail["name"] == HOSTILE[1] and detail["tags"] == {HOSTILE[1]: HOSTILE[2]}
    assert json.loads(response.content) == response.json()


@pytest.mark.django_db
def test_one_cluster_has_its_results_evidence_and_references(make_fleet: Any, token: str) -> None:
    fleet = make_fleet(2)
    body = Client().get(reverse("api:cluster-detail", args=[fleet.clusters[0].pk]), HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert len(body["results"]) == 15 and body["evidence"]
    result = next(r for r in body["results"] if r["control"] == "ARC-PL-01")
    assert result["title"] and result["severity"] and result["status"] in ("pass", "fail", "unknown")
    first = {k: result["references"][0][k] for k in ("framework", "section")}
    assert first == {"framework": "msft-arc-network", "section": CONTROLS_BY_ID["ARC-PL-01"].recommendation}


@pytest.mark.django_db
def test_unknown_ids_and_paths_are_404_problems(make_fleet: Any, token: str) -> None:
    make_fleet(1)
    for path in ("/api/v1/clusters/abc/", "/api/v1/clusters/99999999/", "/api/v1/scans/not-a-uuid/", "/api/v1/nothing/here"):
        response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 404 and response["Content-Type"] == "application/problem+json", path
        assert set(response.json()) == PROBLEM_KEYS


@pytest.mark.django_db
def test_each_token_is_rate_limited_on_its_own(make_fleet: Any, analyst: Any, settings: Any) -> None:
    make_fleet(1)
    settings.ARC_API_RATE = "3/min"
    first, second = tokens.issue(analyst, "one")[1], tokens.issue(analyst, "two")[1]
    answers = [get(first, "fleet").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = get(first, "fleet")
    assert limited["Content-Type"] == "application/problem+json" and int(limited["Retry-After"]) > 0
    assert limited.json()["errors"][0]["code"] == "throttled"
    assert get(second, "fleet").status_code == 200


@pytest.mark.django_db
def test_the_rate_limit_slides_and_a_refused_call_does_not_use_it_up(
    make_fleet: Any, analyst: Any, settings: Any, monkeypatch: Any
) -> None:
    make_fleet(1)
    settings.ARC_API_RATE = "4/min"
    raw = tokens.issue(analyst, "one")[1]
    clock = [60.0 * 29_000_000]  # the start of a minute
    monkeypatch.setattr(TokenRateThrottle, "timer", lambda self: clock[0])
    assert [get(raw, "fleet").status_code for _ in range(5)] == [200, 200, 200, 200, 429]
    clock[0] += 90  # half-way through the next minute, half of the last one's 4 still count
    answers = [get(raw, "fleet") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[-1]["Retry-After"] == "15"  # then the last minute weighs 1, and 3 + 1 fit
    clock[0] += 15
    assert get(raw, "fleet").status_code == 200


@pytest.mark.django_db
def test_an_export_started_through_the_api_is_audited_polled_and_downloaded(
    make_fleet: Any, analyst: Any, token: str, django_capture_on_commit_callbacks: Any
) -> None:
    make_fleet(3)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    bad = client.post(reverse("api:export-list"), {"kind": "findings", "format": "csv", "filters": {"grade": "Z"}}, "application/json")
    assert bad.status_code == 400 and "grade" in bad.json()["detail"] and not Export.objects.exists()
    started = client.post(
        reverse("api:export-list"), {"kind": "scorecards", "format": "csv", "filters": {"grade": ["F", "-"]}}, "application/json"
    )
    assert started.status_code == 400  # one grade, as on the page
    with django_capture_on_commit_callbacks(execute=True):  # the task builds the file on commit
        started = client.post(
            reverse("api:export-list"), {"kind": "scorecards", "format": "csv", "filters": {"location": "eastus"}}, "application/json"
        )
    assert started.status_code == 202
    export = Export.objects.get()
    assert export.requested_by == analyst and export.filters == {"location": "eastus"}  # the audit row, as the UI writes it
    assert started["Location"] == reverse("api:export-detail", args=[export.pk])
    polled = client.get(started["Location"]).json()
    assert polled["state"] == "succeeded" and polled["progress"] == 1.0 and polled["download"].endswith("/download")
    download = client.get(polled["download"])
    assert download.status_code == 200 and download["X-Content-SHA256"] == export.sha256
    assert b"eastus" in b"".join(download.streaming_content)


@pytest.mark.django_db
def test_a_read_only_token_cannot_start_an_export(make_fleet: Any, analyst: Any) -> None:
    make_fleet(1)
    _, raw = tokens.issue(analyst, "read", scopes=[tokens.READ])
    response = Client().post(
        reverse("api:export-list"), {"kind": "scorecards", "format": "csv"}, "application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 403 and "'export'" in response.json()["detail"] and not Export.objects.exists()


@pytest.mark.django_db
def test_no_token_reaches_the_logs(make_fleet: Any, analyst: Any, caplog: Any) -> None:
    make_fleet(1)
    _, raw = tokens.issue(analyst, "siem")
    secret = raw.rsplit("_", 1)[1]
    revoked_token, revoked = tokens.issue(analyst, "old")
    tokens.revoke(revoked_token)
    with caplog.at_level(logging.DEBUG):
        assert get(raw, "fleet").status_code == 200
        assert get(revoked, "fleet").status_code == 401
        assert get(raw[:-2] + "xx", "cluster-list", grade="Z").status_code == 401
        assert get(raw, "cluster-list", grade="Z").status_code == 400
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {getattr(r, 'request', '')!r}" for r in caplog.records)
    assert "Unauthorized" in logged  # the failures were logged, without the token
    for value in (raw, secret, revoked, revoked.rsplit("_", 1)[1]):
        assert value not in logged


def test_gunicorn_access_log_names_no_authorization_header() -> None:
    from gunicorn.config import Config

    config = Config()
    config.set("accesslog", "-")
    namespace: dict[str, Any] = {}
    exec(compile(open("gunicorn.conf.py").read(), "gunicorn.conf.py", "exec"), namespace)  # noqa: S102
    fmt = namespace.get("access_log_format", config.access_log_format)
    assert "authorization" not in fmt.lower() and "%({" not in fmt.replace("%({x-forwarded-for}i)s", "")


@pytest.mark.django_db
def test_a_server_error_is_a_logged_500_problem_that_reveals_nothing(make_fleet: Any, token: str, monkeypatch: Any, caplog: Any) -> None:
    make_fleet(1)

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("connection string Password=hunter2")

    monkeypatch.setattr("web.api.views.fleet_state", broken)
    client = Client(raise_request_exception=False)  # the handler signals the error, as Django does for pages
    with caplog.at_level(logging.ERROR):
        response = client.get(reverse("api:fleet"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 500 and response["Content-Type"] == "application/problem+json"
    assert set(response.json()) == PROBLEM_KEYS and "hunter2" not in response.content.decode()
    assert any("hunter2" in str(r.exc_info) for r in caplog.records if r.exc_info)  # the log has the cause


@pytest.mark.django_db
def test_no_endpoint_needs_more_than_a_few_queries(make_fleet: Any, analyst: Any, sample: dict[str, Any]) -> None:
    """Issue 17's budget is 15 SQL queries a request; a list or detail must not grow with the fleet."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.web.test_api_access import EXPECTED, api_kwargs

    make_fleet(30, name="other")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {tokens.issue(analyst, 'counted')[1]}")
    counts = {}
    for name in sorted(set(EXPECTED) - {"docs", "not-found"}):
        url = reverse(f"api:{name}", kwargs=api_kwargs(sample).get(name, {}))
        client.get(url)  # warm the per-evaluation caches, as a busy server has them
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200, name
        counts[name] = len(queries)
    assert max(counts.values()) <= 10, counts


def test_the_openapi_document_validates_without_a_warning(tmp_path: Any) -> None:
    from django.core.management import call_command

    target = tmp_path / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))  # SystemExit on a warning
    assert "/api/v1/changes" in target.read_text()


@pytest.mark.django_db
def test_a_page_of_clusters_is_served_from_cache_until_the_next_evaluation(make_fleet: Any, token: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from posture.scans.evaluation import evaluate_scope

    fleet = make_fleet(4)
    first = get(token, "cluster-list", sort="-score", limit="2").json()
    with CaptureQueriesContext(connection) as again:
        assert get(token, "cluster-list", sort="-score", limit="2").json() == first
    assert not any('FROM "posture_cluster"' in q["sql"] and "LIMIT 3" in q["sql"] for q in again.captured_queries)
    assert get(token, "cluster-list", sort="-score", limit="3").json()["results"][:2] == first["results"]  # own entry
    target = Cluster.objects.get(pk=first["results"][0]["id"])
    Cluster.objects.filter(pk=target.pk).update(name="renamed-by-a-scan")
    evaluate_scope(fleet.scope.pk)  # a new fleet version
    assert get(token, "cluster-list", sort="-score", limit="2").json()["results"][0]["name"] == "renamed-by-a-scan"
