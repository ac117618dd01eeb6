"""Issue #15 (hardening): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #15 only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_data_plane"),
    ]

    operations = [
        # A delivery to an address that is not publicly routable is recorded as refused.
        migrations.AlterField(
            model_name="webhookdelivery",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("refused", "Refused"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
    ]
