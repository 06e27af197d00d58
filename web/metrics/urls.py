"""/metrics for Prometheus: posture and operations gauges from stored state."""

from django.urls import path

from web.metrics.views import metrics

urlpatterns = [
    path("", metrics, name="metrics"),
]
