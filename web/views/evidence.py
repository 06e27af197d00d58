"""The public key that verifies evidence bundles, for auditors and `verify_evidence --public-key`."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from posture.exports import signing
from web.views.common import VIEW


@require_safe
@permission_required(VIEW, raise_exception=True)
def public_key(request: HttpRequest) -> HttpResponse:
    pem = signing.public_key_pem()
    response = HttpResponse(pem, content_type="text/plain; charset=us-ascii")
    response["Content-Disposition"] = 'inline; filename="arc-posture-evidence-public-key.pem"'
    response["X-Key-Id"] = signing.key_id(pem)
    return response
