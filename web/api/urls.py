"""The read-only JSON API, /api/v1/ (Django REST framework, drf-spectacular).

Ids in paths are strings, checked by the views: a malformed one gets this API's 404 problem,
not the site's HTML page; so does any other path under /api/v1/ (the last pattern).
tests/web/test_api_access.py holds the expected answer of every pattern for every caller.
"""

from django.urls import path, re_path

from web.api import changes, clusters, exports, views
from web.api.docs import DocsView, SchemaView

app_name = "api"

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="api:schema"), name="docs"),
    path("fleet/", views.FleetSummaryView.as_view(), name="fleet"),
    path("fleet/trend/", views.FleetTrendView.as_view(), name="fleet-trend"),
    path("scopes/", views.ScopeList.as_view(), name="scope-list"),
    path("scans/", views.ScanList.as_view(), name="scan-list"),
    path("scans/<str:scan_id>/", views.ScanDetail.as_view(), name="scan-detail"),
    path("clusters/", clusters.ClusterList.as_view(), name="cluster-list"),
    path("clusters/<str:pk>/", clusters.ClusterDetail.as_view(), name="cluster-detail"),
    path("controls/", views.ControlList.as_view(), name="control-list"),
    path("controls/<str:control_id>/", views.ControlDetail.as_view(), name="control-detail"),
    path("frameworks/", views.FrameworkList.as_view(), name="framework-list"),
    path("frameworks/<str:framework>/", views.FrameworkDetail.as_view(), name="framework-detail"),
    path("attestations/", views.AttestationList.as_view(), name="attestation-list"),
    path("attestations/<str:pk>/", views.AttestationDetail.as_view(), name="attestation-detail"),
    path("exceptions/", views.ExceptionList.as_view(), name="exception-list"),
    path("exceptions/<str:pk>/", views.ExceptionDetail.as_view(), name="exception-detail"),
    path("exports/", exports.ExportList.as_view(), name="export-list"),
    path("exports/<str:export_id>/", exports.ExportDetail.as_view(), name="export-detail"),
    path("exports/<str:export_id>/download", exports.ExportDownload.as_view(), name="export-download"),
    path("changes", changes.ChangeFeed.as_view(), name="changes"),
    # Last: anything else under /api/v1/ (new endpoints go above it).
    re_path(r"^(?P<rest>.*)$", views.NotFound.as_view(), name="not-found"),
]
