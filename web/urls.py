"""URL map. Every page needs a login (LoginRequiredMiddleware) and at least posture.view_posture;
tests/web/test_access.py holds the expected answer of every pattern for every role."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from web.views import (
    accounts,
    alerts,
    benchmarks,
    clusters,
    controls,
    evidence,
    exports,
    governance,
    health,
    overview,
    scans,
    scopes,
    tokens,
    users,
)
from web.views.unsubscribe import unsubscribe

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # Entra ID sign-in, the read-only API (token auth) and Prometheus metrics (bearer token)
    path("oidc/", include("web.oidc.urls")),
    path("api/v1/", include("web.api.urls")),
    path("metrics", include("web.metrics.urls")),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", accounts.password_change, name="password-change"),
    path("", overview.overview, name="overview"),
    # Clusters
    path("clusters/", clusters.cluster_list, name="cluster-list"),
    path("clusters/<int:pk>/", clusters.cluster_detail, name="cluster-detail"),
    # Benchmarks and controls
    path("benchmarks/", benchmarks.benchmark_list, name="benchmark-list"),
    path("benchmarks/<slug:framework>/", benchmarks.benchmark_detail, name="benchmark-detail"),
    path("benchmarks/<slug:framework>/<str:section>/", benchmarks.section_detail, name="benchmark-section"),
    path("controls/", controls.control_list, name="control-list"),
    path("controls/<slug:control_id>/", controls.control_detail, name="control-detail"),
    path("controls/<slug:control_id>/remediation.sh", controls.control_remediation, name="control-remediation"),
    # Scans and evidence
    path("scans/", scans.scan_list, name="scan-list"),
    path("scans/<uuid:scan_id>/", scans.scan_detail, name="scan-detail"),
    path("scans/<str:scan_id>/progress.json", scans.scan_progress_json, name="scan-progress"),
    path("evidence/<int:pk>/raw.jsonl.gz", scans.evidence_download, name="evidence-download"),
    path("evidence/public-key.pem", evidence.public_key, name="evidence-public-key"),
    # Exports: GET lists the user's exports, POST starts one (from a page's Export menu)
    path("exports/", exports.export_list, name="export-list"),
    path("exports/audit/", exports.export_audit, name="export-audit"),
    path("exports/<str:export_id>/progress.json", exports.export_progress_json, name="export-progress"),
    path("exports/<uuid:export_id>/download", exports.export_download, name="export-download"),
    # Alerts: rules (analysts and admins change them, everyone subscribes) and the history
    path("alerts/", alerts.rule_list, name="alert-rule-list"),
    path("alerts/new/", alerts.rule_create_view, name="alert-rule-create"),
    path("alerts/<int:pk>/", alerts.rule_detail, name="alert-rule-detail"),
    path("alerts/<int:pk>/edit/", alerts.rule_edit, name="alert-rule-edit"),
    path("alerts/<int:pk>/enabled/", alerts.rule_enabled, name="alert-rule-enabled"),
    path("alerts/<int:pk>/delete/", alerts.rule_delete_view, name="alert-rule-delete"),
    path("alerts/<int:pk>/subscription/", alerts.rule_subscription, name="alert-rule-subscription"),
    path("alerts/<int:pk>/preview/", alerts.rule_preview, name="alert-rule-preview"),
    path("alerts/outbox/", alerts.notification_list, name="notification-list"),
    path("alerts/outbox/<uuid:pk>/", alerts.notification_detail, name="notification-detail"),
    path("alerts/outbox/<uuid:pk>/resend/", alerts.notification_resend, name="notification-resend"),
    # One-click unsubscribe (RFC 8058): no sign-in, the signed token is the authority
    path("alerts/unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
    # Scopes
    path("scopes/", scopes.scope_list, name="scope-list"),
    path("scopes/new/", scopes.scope_create, name="scope-create"),
    path("scopes/<slug:name>/edit/", scopes.scope_edit, name="scope-edit"),
    path("scopes/<slug:name>/scan/", scans.scan_start, name="scan-start"),
    # Attestations and exceptions
    path("attestations/", governance.record_list, {"kind": "attestation"}, name="attestation-list"),
    path("attestations/new/", governance.record_create, {"kind": "attestation"}, name="attestation-create"),
    path("attestations/<int:pk>/", governance.record_detail, {"kind": "attestation"}, name="attestation-detail"),
    path("attestations/<int:pk>/revoke/", governance.attestation_revoke, name="attestation-revoke"),
    path("exceptions/", governance.record_list, {"kind": "exception"}, name="exception-list"),
    path("exceptions/new/", governance.record_create, {"kind": "exception"}, name="exception-create"),
    path("exceptions/<int:pk>/", governance.record_detail, {"kind": "exception"}, name="exception-detail"),
    path("exceptions/<int:pk>/approve/", governance.exception_approve, name="exception-approve"),
    path("exceptions/<int:pk>/reject/", governance.exception_reject, name="exception-reject"),
    path("exceptions/<int:pk>/revoke/", governance.exception_revoke, name="exception-revoke"),
    # Users
    path("users/", users.user_list, name="user-list"),
    path("users/new/", users.user_create, name="user-create"),
    path("users/<int:pk>/role/", users.user_role_change, name="user-role"),
    path("users/<int:pk>/active/", users.user_set_active, name="user-set-active"),
    # API tokens: everyone manages their own (admins everyone's); the API itself is under api/v1/
    path("tokens/", tokens.token_list, name="token-list"),
    path("tokens/new/", tokens.token_create, name="token-create"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
]
