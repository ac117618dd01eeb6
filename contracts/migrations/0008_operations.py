"""Issue #18 (operations): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #18 only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0007_scale"),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerVerification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("checked_at", models.DateTimeField()),
                ("intact", models.BooleanField()),
                ("records", models.PositiveBigIntegerField(default=0)),
                ("head_seq", models.PositiveBigIntegerField(default=0)),
                ("broken_seq", models.PositiveBigIntegerField(blank=True, null=True)),
                ("reason", models.TextField(blank=True)),
                ("failure_fingerprint", models.CharField(blank=True, max_length=64)),
                ("alerted_fingerprint", models.CharField(blank=True, max_length=64)),
                ("alerted_at", models.DateTimeField(blank=True, null=True)),
                (
                    "organization",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ledger_verification",
                        to="contracts.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["organization_id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(models.Q(("failure_fingerprint", ""), ("intact", True)), models.Q(("intact", False), models.Q(("failure_fingerprint", ""), _negated=True)), _connector="OR"),
                        name="ledger_verification_fingerprint_iff_broken",
                    )
                ],
            },
        ),
    ]
