"""PostgreSQL storage parameters for the cluster table.

- Facts are several kilobytes of JSON per cluster; left in the row they make every list query
  scan the whole table (145 MB at 50,000 clusters, 25 MB out of line). With toast_tuple_target
  at 128 bytes PostgreSQL keeps them in the TOAST table, read only when a query asks for facts.
- Every evaluation rewrites the score columns of changed clusters. A fill factor of 80 leaves room
  in each page for those new row versions (heap-only tuples), so the table's many indexes are not
  touched by them.
"""

from django.db import migrations


def tune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE posture_cluster SET (toast_tuple_target = 128, fillfactor = 80)")


def untune(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE posture_cluster RESET (toast_tuple_target, fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("posture", "0001_initial")]
    operations = [migrations.RunPython(tune, untune)]
