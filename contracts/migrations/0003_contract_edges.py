"""Issue #13 (contract edges): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #13 only."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0002_database_guards"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserPreference",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("time_zone", models.CharField(default="UTC", max_length=64)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="preference",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.AlterField(
            model_name="migration",
            name="origin",
            field=models.CharField(
                choices=[
                    ("staff", "Proposed by the vendor"),
                    ("alias-move", "Alias moved"),
                    ("deprecation", "Snapshot deprecated"),
                    ("customer", "Requested by your organisation"),
                ],
                default="staff",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="consentrecord",
            name="action",
            field=models.CharField(
                choices=[
                    ("accept-terms", "Accepted contract terms"),
                    ("consent", "Consented to a migration"),
                    ("defer", "Deferred a migration"),
                    ("decline", "Declined a migration"),
                    ("apply", "Migration applied"),
                    ("rollback", "Rolled back a migration"),
                    ("forced", "Migration forced at retirement"),
                    ("baseline", "Marked a procurement baseline"),
                    ("extended-support", "Bought extended support"),
                    ("extended-support-end", "Extended support ended"),
                    ("follow", "Pin followed its alias to a new snapshot"),
                    ("staff-move", "Pin moved by the vendor"),
                ],
                max_length=32,
            ),
        ),
    ]
