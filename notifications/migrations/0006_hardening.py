"""Issue #15 (hardening): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #15 only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_data_plane"),
    ]

    operations = []
