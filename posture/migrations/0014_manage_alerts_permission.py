from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("posture", "0013_alert_kinds"),
    ]

    operations = [
        # The role groups receive it from posture/roles.py after migrate (posture/apps.py).
        migrations.AlterModelOptions(
            name="access",
            options={
                "default_permissions": (),
                "managed": False,
                "permissions": [
                    ("view_posture", "View posture, scans and evidence"),
                    ("run_scan", "Start a scan"),
                    ("attest_control", "Record attestations"),
                    ("request_exception", "Request exceptions"),
                    ("export_evidence", "Export compliance evidence"),
                    ("manage_scopes", "Manage Azure scopes"),
                    ("approve_exception", "Approve exceptions"),
                    ("manage_users", "Manage users and their roles"),
                    ("manage_alerts", "Create, change and delete alert rules"),
                ],
            },
        ),
    ]
