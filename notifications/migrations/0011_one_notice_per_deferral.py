"""Issue #13: every deferral of a migration is told, once each. A deferral's notice is keyed by its
ledger record (`migration-deferred:<seq>`), so the per-migration uniqueness holds only for notices
without a key. Notices planned before carry no key: they get the key of the deferral they told (the
organisation's deferral record of that migration at the notice's due time, which was the decision
time), so the planner does not tell that deferral a second time."""

from django.db import migrations, models
from django.db.models import Q

DEFERRED = "migration-deferred"


def key_planned_deferrals(apps, schema_editor):
    Notice = apps.get_model("notifications", "Notice")
    ConsentRecord = apps.get_model("contracts", "ConsentRecord")
    for notice in Notice.objects.filter(
        milestone=DEFERRED, dedupe_key="", migration__isnull=False
    ).iterator():
        record = (
            ConsentRecord.objects.filter(
                organization_id=notice.organization_id,
                migration_id=notice.migration_id,
                action="defer",
                created_at__lte=notice.due_at,
            )
            .order_by("-created_at", "-seq")
            .first()
        )
        if record is not None:
            Notice.objects.filter(pk=notice.pk).update(dedupe_key=f"{DEFERRED}:{record.seq}")


def unkey_planned_deferrals(apps, schema_editor):
    # Back to one notice per migration: the first of each migration and channel keeps it.
    Notice = apps.get_model("notifications", "Notice")
    keep = set()
    for notice in Notice.objects.filter(milestone=DEFERRED).exclude(dedupe_key="").order_by("due_at", "pk"):
        key = (notice.organization_id, notice.migration_id, notice.channel)
        if key in keep:
            notice.delete()
        else:
            keep.add(key)
            Notice.objects.filter(pk=notice.pk).update(dedupe_key="")


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0009_renewal"),
        ("notifications", "0010_renewal"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="notice", name="one_notice_per_org_migration_milestone_channel"
        ),
        migrations.AddConstraint(
            model_name="notice",
            constraint=models.UniqueConstraint(
                condition=Q(migration__isnull=False, dedupe_key=""),
                fields=("organization", "migration", "milestone", "channel"),
                name="one_notice_per_org_migration_milestone_channel",
            ),
        ),
        migrations.AlterField(
            model_name="notice",
            name="dedupe_key",
            field=models.CharField(
                blank=True,
                help_text="Identity of an ad-hoc notice, or of a deferral's (its ledger record).",
                max_length=200,
            ),
        ),
        migrations.RunPython(key_planned_deferrals, unkey_planned_deferrals),
    ]
