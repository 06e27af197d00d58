"""The OpenAPI document and the interactive docs page, served with the app's own assets
(drf-spectacular-sidecar): nothing from a CDN, so both work air-gapped.

The schema answers a token or a session, like every endpoint. The docs page is for people: it
needs a signed-in session (anonymous visitors are sent to the sign-in page) and its "Try it out"
calls the API with that session. It is Swagger UI's split view: the page loads its start-up
script from a URL of its own, so no inline script is needed under the site's CSP
(script-src 'self'); templates/api/swagger_ui.html drops the inline <style> of the stock page.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer

from web.api.access import PostureAccess, TokenRateThrottle


class OpenApiJsonRenderer(JSONRenderer):
    media_type = "application/vnd.oai.openapi+json"


class SchemaView(SpectacularAPIView):
    permission_classes = [PostureAccess]
    throttle_classes = [TokenRateThrottle]
    renderer_classes = [JSONRenderer, OpenApiJsonRenderer]


class DocsView(SpectacularSwaggerSplitView):
    permission_classes = [PostureAccess]
    template_name = "api/swagger_ui.html"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)
        view.login_required = True  # DRF exempts its views; this page sends visitors to sign in
        return view
