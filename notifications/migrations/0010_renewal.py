"""Issue #19 (renewal): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #19 only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0009_operations"),
    ]

    operations = []
