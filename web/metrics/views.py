"""/metrics: the Prometheus exposition, behind a bearer token (ARC_METRICS_TOKEN).

No token configured means the endpoint is switched off. It then answers 401 like a wrong token,
with a body saying why: a 404 would look to Prometheus like a wrong path, and a 401 keeps the
answer the same whether or not metrics are on for anyone probing without the token.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from web.metrics.collector import PostureCollector

# Our own registry: the global one would add this process's Python and GC metrics, which differ
# between web processes and say nothing about posture.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(PostureCollector())
CACHE_KEY = "metrics:families"
REALM = 'Bearer realm="arc-posture-metrics"'


class _Collected:
    """Metric families collected earlier (from the cache), rendered like a registry."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _unauthorized(message: str, challenge: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = challenge
    return response


def _token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant time, on bytes: compare_digest refuses non-ASCII str, and a header may hold any byte.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


def _families() -> list[Metric]:
    """One collection, shared through the cache by every scraper and web process for
    ARC_METRICS_CACHE_SECONDS (the families, not the bytes: each scraper picks its format)."""
    seconds = settings.ARC_METRICS_CACHE_SECONDS
    cache = caches["pages"]
    families = cache.get(CACHE_KEY) if seconds else None
    if families is None:
        families = list(REGISTRY.collect())
        if seconds:
            cache.set(CACHE_KEY, families, seconds)
    return families


@require_safe
@login_not_required
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    expected = settings.ARC_METRICS_TOKEN
    if not expected:
        return _unauthorized("Metrics are switched off: no ARC_METRICS_TOKEN is configured.", REALM)
    if not request.headers.get("Authorization"):
        return _unauthorized("Send the metrics token: Authorization: Bearer <ARC_METRICS_TOKEN>.", REALM)
    if not _token_matches(request, expected):
        # The token given is never echoed or logged.
        return _unauthorized("The bearer token is not the metrics token.", f'{REALM}, error="invalid_token"')
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_Collected(_families())), content_type=content_type)
