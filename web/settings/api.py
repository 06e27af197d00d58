"""The read-only API (/api/v1/): Django REST framework, drf-spectacular and token settings, read
from the environment; star-imported by web/settings/base.py."""

from __future__ import annotations
