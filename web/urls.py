from django.contrib.auth import views as auth_views
from django.urls import path

from web.views import accounts, health, scans

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", scans.overview, name="overview"),
    path("scans/", scans.scan_list, name="scan-list"),
    path("scans/<uuid:scan_id>/", scans.scan_detail, name="scan-detail"),
    path("scopes/<slug:name>/scan/", scans.scan_start, name="scan-start"),
]
