"""Issue #15 (hardening): reserved in the migration chain so that the work of each issue
lands in its own file. Operations for the models of issue #15 only.

The chain head becomes a signed statement (seq, hash, checkpoint count, last checkpoint seq); the
heads that exist are signed once here, counting their checkpoints. On PostgreSQL, checkpoints become
append-only like the ledger, and a head only moves forward (no rewind, no lower checkpoint count, no
delete), even from raw SQL.
"""

from django.db import migrations, models

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION contracts_ledger_head_forward_only() RETURNS trigger AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger heads cannot be deleted'
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF NEW.organization_id <> OLD.organization_id OR NEW.seq < OLD.seq
         OR (NEW.seq = OLD.seq AND NEW.head_hash IS DISTINCT FROM OLD.head_hash)
         OR NEW.checkpoints < OLD.checkpoints OR NEW.last_checkpoint_seq < OLD.last_checkpoint_seq THEN
        RAISE EXCEPTION 'the ledger head of organisation % only moves forward', OLD.organization_id
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER contracts_ledgerhead_forward_only BEFORE UPDATE OR DELETE ON contracts_ledgerhead
      FOR EACH ROW EXECUTE FUNCTION contracts_ledger_head_forward_only();
    """,
    # contracts_refuse_change() comes from 0002_database_guards.
    """
    CREATE TRIGGER contracts_ledgercheckpoint_append_only BEFORE UPDATE OR DELETE ON contracts_ledgercheckpoint
      FOR EACH ROW EXECUTE FUNCTION contracts_refuse_change();
    """,
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS contracts_ledgercheckpoint_append_only ON contracts_ledgercheckpoint;",
    "DROP TRIGGER IF EXISTS contracts_ledgerhead_forward_only ON contracts_ledgerhead;",
    "DROP FUNCTION IF EXISTS contracts_ledger_head_forward_only();",
]


def sign_existing_heads(apps, schema_editor):
    """Sign each existing head as it stands (the same statement contracts.ledger.chain signs)."""
    from contracts import signing
    from contracts.canonical import canonical_json

    LedgerHead = apps.get_model("contracts", "LedgerHead")
    LedgerCheckpoint = apps.get_model("contracts", "LedgerCheckpoint")
    for head in LedgerHead.objects.select_related("organization").filter(seq__gt=0):
        checkpoints = LedgerCheckpoint.objects.filter(organization_id=head.organization_id)
        head.checkpoints = checkpoints.count()
        head.last_checkpoint_seq = max(checkpoints.values_list("seq", flat=True), default=0)
        statement = canonical_json(
            {
                "statement": "ledger-head",
                "organization": head.organization.slug,
                "seq": head.seq,
                "head_hash": head.head_hash,
                "checkpoints": head.checkpoints,
                "last_checkpoint_seq": head.last_checkpoint_seq,
            }
        )
        head.key_id, head.signature = signing.sign("consent", statement)
        head.save(update_fields=["checkpoints", "last_checkpoint_seq", "key_id", "signature"])


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
        ("contracts", "0004_data_plane"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgerhead",
            name="checkpoints",
            field=models.PositiveIntegerField(default=0, help_text="Checkpoints signed of this chain."),
        ),
        migrations.AddField(
            model_name="ledgerhead",
            name="key_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="ledgerhead",
            name="last_checkpoint_seq",
            field=models.PositiveBigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="ledgerhead",
            name="signature",
            field=models.TextField(blank=True, help_text="Base64 Ed25519 signature of the head statement."),
        ),
        migrations.RunPython(sign_existing_heads, migrations.RunPython.noop),
        migrations.RunPython(forward, backward),
    ]
