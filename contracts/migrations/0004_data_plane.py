"""Issue #14 (data plane): gateways and their receipt keys, the pin map's change log, hourly usage.

On PostgreSQL the change log refuses UPDATE always, and DELETE unless the transaction opted in with
`SET LOCAL vcp.pin_map_prune = 'on'` (contracts.gateway.changelog.pin_map_changes_prune, which keeps
the newest entry): the log is append-only like the ledger, but it is pruned after its retention."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION contracts_pin_map_change_guard() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' AND current_setting('vcp.pin_map_prune', true) = 'on' THEN
        RETURN OLD;
      END IF;
      RAISE EXCEPTION 'contracts_pinmapchange rows are append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER contracts_pinmapchange_append_only BEFORE UPDATE OR DELETE ON contracts_pinmapchange
      FOR EACH ROW EXECUTE FUNCTION contracts_pin_map_change_guard();
    """,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS contracts_pinmapchange_append_only ON contracts_pinmapchange;",
    "DROP FUNCTION IF EXISTS contracts_pin_map_change_guard();",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in FORWARD:
        schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in BACKWARD:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0003_contract_edges"),
    ]

    operations = [
        migrations.CreateModel(
            name='Gateway',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(max_length=100, unique=True)),
                ('prefix', models.CharField(max_length=16, unique=True)),
                ('key_hash', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='PinMapChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('pin', 'Pin (organisation, alias)'), ('alias', 'Alias default'), ('snapshot', 'Snapshot lifecycle')], max_length=16)),
                ('organization', models.CharField(blank=True, help_text='Slug (pin changes).', max_length=64)),
                ('alias', models.CharField(blank=True, max_length=100)),
                ('snapshot', models.CharField(blank=True, max_length=100)),
                ('cause', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['id'],
                'indexes': [models.Index(fields=['created_at'], name='contracts_p_created_65c07a_idx')],
            },
        ),
        migrations.CreateModel(
            name='GatewayReceiptKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key_id', models.CharField(max_length=32, unique=True)),
                ('public_key_pem', models.TextField()),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('gateway', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='receipt_keys', to='contracts.gateway')),
            ],
            options={
                'ordering': ['-created_at'],
                'constraints': [models.CheckConstraint(condition=models.Q(('key_id__regex', '^gw-[0-9a-f]{16}$')), name='gateway_key_id_shape')],
            },
        ),
        migrations.CreateModel(
            name='UsageBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('batch_id', models.CharField(max_length=64)),
                ('rows', models.PositiveIntegerField()),
                ('requests', models.BigIntegerField()),
                ('dropped', models.BigIntegerField(default=0)),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('gateway', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='usage_batches', to='contracts.gateway')),
            ],
            options={
                'ordering': ['-received_at'],
                'constraints': [models.UniqueConstraint(fields=('gateway', 'batch_id'), name='one_usage_batch_per_gateway_id')],
            },
        ),
        migrations.CreateModel(
            name='UsageHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('requests', models.BigIntegerField()),
                ('alias', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contracts.alias')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_hours', to='contracts.organization')),
                ('snapshot', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='usage_hours', to='contracts.snapshot')),
            ],
            options={
                'ordering': ['hour'],
                'indexes': [models.Index(fields=['snapshot', 'hour'], name='contracts_u_snapsho_6f51ee_idx'), models.Index(fields=['organization', 'hour'], name='contracts_u_organiz_0d2523_idx')],
                'constraints': [models.UniqueConstraint(fields=('organization', 'alias', 'snapshot', 'hour'), name='one_usage_row_per_hour'), models.CheckConstraint(condition=models.Q(('requests__gte', 0)), name='usage_requests_not_negative')],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
