"""/metrics (prometheus-client): its bearer token and cache, read from the environment;
star-imported by web/settings/base.py."""

from __future__ import annotations
