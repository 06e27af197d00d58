"""/metrics (prometheus-client): its bearer token and cache, read from the environment;
star-imported by web/settings/base.py."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from posture.env import env_int, env_secret

# The bearer token Prometheus sends (`authorization: {credentials: ...}` in its scrape config).
# Without one, /metrics answers every request 401 and says it is switched off.
ARC_METRICS_TOKEN = env_secret("ARC_METRICS_TOKEN")
if ARC_METRICS_TOKEN and len(ARC_METRICS_TOKEN) < 32:
    # The endpoint has no lock-out: only a long random token keeps guessing hopeless.
    raise ImproperlyConfigured("ARC_METRICS_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)")
# Seconds one collection is served for: every scraper and web process share it through the
# "pages" cache, so several Prometheus replicas cost the database one collection per period.
ARC_METRICS_CACHE_SECONDS = env_int("ARC_METRICS_CACHE_SECONDS", 15, minimum=0, maximum=3600)
