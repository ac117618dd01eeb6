"""Issue #13 (contract edges): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #13 only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_delivery_lease"),
    ]

    operations = []
