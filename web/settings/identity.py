"""Entra ID sign-in (OpenID Connect through mozilla-django-oidc), local passwords and the
break-glass account, read from the environment; star-imported by web/settings/base.py."""

from __future__ import annotations
