"""ARG's per-principal quota window and ARM's subscription read throttling."""

from __future__ import annotations

import re
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest

from azure_emulator import Emulator
from azure_emulator.quota import SlidingWindowQuota, format_timespan

from .helpers import query, subscriptions

TIMESPAN = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d{7})?$")
BODY = {"query": "resourcecontainers | take 1"}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "00:00:05"), (4.231, "00:00:04.2310000"), (0.0000001, "00:00:00.0000001"), (3661.5, "01:01:01.5000000"), (0, "00:00:00")],
)
def test_it_formats_resets_after_as_a_dotnet_timespan(seconds: float, text: str) -> None:
    assert format_timespan(seconds) == text


def test_the_window_slides_and_rejections_do_not_consume_quota() -> None:
    now = [100.0]
    quota = SlidingWindowQuota(2, 5.0, clock=lambda: now[0])
    assert quota.take("app").remaining == 1
    now[0] = 102.0
    second = quota.take("app")
    assert (second.remaining, second.resets_after) == (0, 3.0)  # until the first request leaves
    now[0] = 104.0
    assert not quota.take("app").allowed
    now[0] = 105.0  # the first slot frees; the rejection above took nothing
    third = quota.take("app")
    assert third.allowed and third.remaining == 0 and third.resets_after == 2.0
    assert quota.take("other-app").remaining == 1  # per principal


def test_it_sends_quota_headers_on_every_arg_response_and_throttles_with_the_documented_body(
    http: requests.Session, emu: Emulator, token: str
) -> None:
    emu.set_quota((3, 1.5))
    remaining = []
    for body in (BODY, {"query": "resources | nonsense"}, BODY):  # a 400 counts and carries headers
        response = query(http, emu, token, body)
        remaining.append(int(response.headers["x-ms-user-quota-remaining"]))
        assert TIMESPAN.match(response.headers["x-ms-user-quota-resets-after"])
    assert remaining == [2, 1, 0]
    throttled = query(http, emu, token, BODY)
    assert throttled.status_code == 429
    assert "Retry-After" not in throttled.headers
    assert throttled.headers["x-ms-user-quota-remaining"] == "0"
    error = throttled.json()["error"]
    assert error["code"] == "RateLimiting"
    assert error["message"].startswith("Please provide below info when asking for support:")
    assert error["details"] == [
        {
            "code": "RateLimiting",
            "message": "Client application has been throttled and should not attempt to repeat the request until "
            "an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.",
        }
    ]
    wait = sum(float(x) * f for x, f in zip(throttled.headers["x-ms-user-quota-resets-after"].split(":"), (3600, 60, 1), strict=True))
    assert 0 < wait <= 1.5
    time.sleep(wait + 0.05)
    assert query(http, emu, token, BODY).status_code == 200
    stats = emu.stats()
    assert (stats["arg_accepted"], stats["arg_throttled"]) == (4, 1)
    assert stats["principals"][emu.client_id] == {"arg_accepted": 4, "arg_throttled": 1}


def test_the_sdk_does_not_retry_a_quota_429_without_retry_after(emu: Emulator, graph: ResourceGraphClient) -> None:
    emu.set_quota((1, 30.0))
    graph.resources(QueryRequest(query=BODY["query"]))
    with pytest.raises(HttpResponseError) as caught:
        graph.resources(QueryRequest(query=BODY["query"]))
    assert caught.value.status_code == 429
    assert caught.value.error is not None and caught.value.error.code == "RateLimiting"
    assert caught.value.response is not None
    assert caught.value.response.headers["x-ms-user-quota-remaining"] == "0"
    assert len(emu.requests("arg")) == 2


def test_the_sdk_retries_a_quota_429_when_retry_after_is_switched_on(emu: Emulator, graph: ResourceGraphClient) -> None:
    emu.set_quota((1, 1.0), retry_after=True)
    graph.resources(QueryRequest(query=BODY["query"]))
    result = graph.resources(QueryRequest(query=BODY["query"]))
    assert result.count == 1
    statuses = [r["status"] for r in emu.requests("arg")]
    assert statuses == [200, 429, 200]
    assert emu.requests("arg")[1]["response_headers"]["Retry-After"] == "1"


def test_it_reports_a_large_remaining_quota_when_switched_off(http: requests.Session, emu: Emulator, token: str) -> None:
    emu.set_quota(None)
    for _ in range(20):
        response = query(http, emu, token, BODY)
        assert response.status_code == 200
    assert response.headers["x-ms-user-quota-remaining"] == "1000"


def test_arm_reads_are_throttled_per_subscription_with_retry_after(http: requests.Session, emu: Emulator, token: str) -> None:
    emu.set_arm_throttle((2, 0.5))
    first, second = subscriptions(emu)[:2]
    cluster = next(c for c in emu.fleet.clusters() if c["subscriptionId"] == first)
    url = f"{emu.base_url}{cluster['id']}?api-version=2024-01-01"
    headers = {"Authorization": f"Bearer {token}"}
    answers = [http.get(url, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ms-ratelimit-remaining-subscription-reads"] for a in answers] == ["1", "0", "0"]
    assert answers[2].headers["Retry-After"] == "2"
    assert answers[2].json()["error"]["code"] == "TooManyRequests"
    other = next(c for c in emu.fleet.clusters() if c["subscriptionId"] == second)
    assert http.get(f"{emu.base_url}{other['id']}?api-version=2024-01-01", headers=headers).status_code == 200
    assert emu.stats()["arm_throttled"] == 1
