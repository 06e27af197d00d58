"""Scopes name their cloud; endpoints and CA bundles move to the operator's configuration.

A scope that had its own authority, Resource Manager endpoint or CA bundle gets the cloud name
"Custom", which no operator can define: its scans fail with a clear message until an admin picks
a cloud the operator defined. Nothing silently starts sending tokens somewhere else.
"""

from django.db import migrations, models
from django.db.models import Q

UNDEFINED = "Custom"


def endpoints_to_names(apps, schema_editor):
    Scope = apps.get_model("posture", "Scope")
    Scope.objects.filter(Q(cloud=UNDEFINED) | ~Q(authority="") | ~Q(arm_endpoint="") | ~Q(ca_file="")).update(cloud=UNDEFINED)


class Migration(migrations.Migration):
    dependencies = [
        ("posture", "0003_data_problems"),
    ]

    operations = [
        migrations.RunPython(endpoints_to_names, migrations.RunPython.noop),
        migrations.RemoveField(model_name="scope", name="arm_endpoint"),
        migrations.RemoveField(model_name="scope", name="authority"),
        migrations.RemoveField(model_name="scope", name="ca_file"),
        migrations.AlterField(
            model_name="scope",
            name="cloud",
            field=models.CharField(default="AzureCloud", help_text="An Azure cloud or one the operator defined (ARC_CLOUDS)", max_length=32),
        ),
    ]
