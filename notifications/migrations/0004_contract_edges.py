"""Issue #13 (contract edges): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #13 only."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_delivery_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="notice",
            name="status_reason",
            field=models.CharField(
                blank=True, help_text="Why the notice was not sent or was sent late.", max_length=300
            ),
        ),
        migrations.AlterField(
            model_name="notice",
            name="milestone",
            field=models.CharField(
                choices=[
                    ("deprecation-announced", "Deprecation announced"),
                    ("notice-date", "Contractual notice date"),
                    ("t-90", "90 days to retirement"),
                    ("t-30", "30 days to retirement"),
                    ("t-7", "7 days to retirement"),
                    ("t-1", "1 day to retirement"),
                    ("retirement-day", "Retirement day"),
                    ("forced-migration-applied", "Forced migration applied"),
                    ("migration-applied", "Migration applied"),
                    ("migration-proposed", "Migration proposed"),
                    ("deadline-approaching", "Migration deadline approaching"),
                    ("migration-rolled-back", "Migration rolled back"),
                    ("migration-declined", "Migration declined"),
                    ("migration-deferred", "Migration deferred"),
                    ("escalation", "Unacknowledged notice escalated"),
                    ("adhoc", "Other notice"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="notice",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("sending", "Sending"),
                    ("sent", "Sent"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped (no recipient)"),
                    ("obsolete", "Not sent (no longer true)"),
                ],
                default="pending",
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="FeedToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("token", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="feed_tokens",
                        to="contracts.organization",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="feed_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("revoked_at__isnull", True)),
                        fields=("organization", "user"),
                        name="one_live_feed_token_per_member",
                    )
                ],
            },
        ),
    ]
