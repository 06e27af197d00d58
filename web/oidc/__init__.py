"""Entra ID sign-in: OpenID Connect through mozilla-django-oidc."""
