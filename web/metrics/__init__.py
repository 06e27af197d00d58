"""/metrics for Prometheus: posture and operations gauges from stored state."""
