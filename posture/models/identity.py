"""Who signs in from outside: an Entra ID account (ExternalIdentity) and the API's bearer
tokens (ApiToken). Secrets are never stored: a token is kept as its SHA-256 digest."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ExternalIdentity(models.Model):
    """An Entra ID account, known by its tenant and object id (never by its e-mail or UPN, which
    an administrator can change or reuse), and the local user it signs in as."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identity")
    tenant_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    # What the last sign-in said, for the users page; the role itself is on the user's groups.
    display_name = models.CharField(max_length=255, blank=True)
    roles_claimed = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant_id", "object_id"], name="one_user_per_entra_account")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.object_id}"


class ApiToken(models.Model):
    """A bearer token for /api/v1/. Shown once at creation; `prefix` (its first characters) lets
    a user tell tokens apart and finds the row, `digest` proves the rest."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    # Empty: every right of the user's role; otherwise only these (posture/api scopes).
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_by_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
