from django.db import models


class Access(models.Model):
    """Holds the product's permissions; it has no table. Roles (posture/roles.py) group them."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_posture", "View posture, scans and evidence"),
            ("run_scan", "Start a scan"),
            ("attest_control", "Record attestations"),
            ("request_exception", "Request exceptions"),
            ("export_evidence", "Export compliance evidence"),
            ("manage_scopes", "Manage Azure scopes"),
            ("approve_exception", "Approve exceptions"),
            ("manage_users", "Manage users and their roles"),
            ("manage_alerts", "Create, change and delete alert rules"),
        ]

    def __str__(self) -> str:
        return "access permissions"


class WorkerHeartbeat(models.Model):
    """The last time a worker on each queue ran a task; shown by /healthz and the scans page."""

    queue = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.queue}@{self.hostname}"
