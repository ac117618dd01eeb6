"""Issue #14 (data plane): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #14 only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_contract_edges"),
    ]

    operations = []
