"""Moments as the documents the product writes carry them: ISO 8601 in UTC with a Z."""

from __future__ import annotations

import datetime as dt


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
