"""Issue #16 (identity): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #16 only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0005_hardening"),
    ]

    operations = []
