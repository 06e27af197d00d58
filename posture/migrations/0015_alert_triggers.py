"""A rule's items stored once per trigger (AlertTrigger), shared by its recipients' notifications
and digest entries; Notification.item_count, filled in here for the rows written before."""

import django.db.models.deletion
from django.db import migrations, models


def count_items(apps, schema_editor):
    Notification = apps.get_model("posture", "Notification")
    length = "jsonb_array_length" if schema_editor.connection.vendor == "postgresql" else "json_array_length"
    Notification.objects.update(item_count=models.Func(models.F("changes"), function=length, output_field=models.IntegerField()))


class Migration(migrations.Migration):
    dependencies = [
        ("posture", "0014_manage_alerts_permission"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="item_count",
            field=models.PositiveIntegerField(default=0, help_text="How many items it reports"),
        ),
        migrations.AlterField(
            model_name="digestentry",
            name="items",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name="notification",
            name="changes",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.CreateModel(
            name="AlertTrigger",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("rule_name", models.CharField(max_length=120)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("control_regression", "A control regresses (starts failing or turns unknown)"),
                            ("score_drop", "A cluster's score drops"),
                            ("cluster_stale", "A cluster is stale or offline for hours"),
                            ("private_link", "Private Link is disabled or a Private Link Scope opens public access"),
                            ("governance_expiry", "An attestation or exception expires"),
                            ("new_failing_cluster", "A new cluster fails a control"),
                            ("scan_failed", "A scan fails or is throttled"),
                        ],
                        max_length=32,
                    ),
                ),
                ("source", models.CharField(max_length=200)),
                ("items", models.JSONField(default=list)),
                ("item_count", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField()),
                (
                    "rule",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="triggers", to="posture.alertrule"
                    ),
                ),
                (
                    "scan",
                    models.ForeignKey(
                        blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="posture.scan"
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="digestentry",
            name="trigger",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="digest_entries", to="posture.alerttrigger"
            ),
        ),
        migrations.AddField(
            model_name="notification",
            name="trigger",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="notifications", to="posture.alerttrigger"
            ),
        ),
        migrations.AddConstraint(
            model_name="alerttrigger",
            constraint=models.UniqueConstraint(fields=("rule", "source"), name="alert_trigger_once"),
        ),
        migrations.RunPython(count_items, migrations.RunPython.noop),
    ]
