"""Issue #14 (data plane): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #14 only: the "still in use" milestone (usage 7 days before
retirement).
The AlterField states the whole choice list, so it also carries #13's three milestones (added in 0004)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0004_contract_edges"),
    ]

    operations = [
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
                    ("still-in-use", "Still in use 7 days before retirement"),
                    ("migration-rolled-back", "Migration rolled back"),
                    ("migration-declined", "Migration declined"),
                    ("migration-deferred", "Migration deferred"),
                    ("escalation", "Unacknowledged notice escalated"),
                    ("adhoc", "Other notice"),
                ],
                max_length=32,
            ),
        ),
    ]
