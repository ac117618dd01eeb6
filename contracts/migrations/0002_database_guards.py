"""Database-level guards on PostgreSQL: published snapshots keep their digest and config, and the
append-only histories (alias moves, pin changes, the consent ledger) refuse UPDATE and DELETE even
from raw SQL. On SQLite the models refuse the same changes (contracts.models.AppendOnlyModel)."""

from django.db import migrations

APPEND_ONLY_TABLES = ("contracts_aliasmove", "contracts_pinchange", "contracts_consentrecord")

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION contracts_refuse_change() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION '% rows are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE OR REPLACE FUNCTION contracts_snapshot_frozen() RETURNS trigger AS $$
    BEGIN
      IF OLD.published_at IS NOT NULL AND
         (NEW.digest IS DISTINCT FROM OLD.digest OR NEW.config::jsonb IS DISTINCT FROM OLD.config::jsonb) THEN
        RAISE EXCEPTION 'snapshot % is published: digest and config are immutable', OLD.name
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER contracts_snapshot_frozen BEFORE UPDATE ON contracts_snapshot
      FOR EACH ROW EXECUTE FUNCTION contracts_snapshot_frozen();
    """,
] + [
    f"""
    CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
      FOR EACH ROW EXECUTE FUNCTION contracts_refuse_change();
    """
    for table in APPEND_ONLY_TABLES
]

BACKWARD = [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in APPEND_ONLY_TABLES] + [
    "DROP TRIGGER IF EXISTS contracts_snapshot_frozen ON contracts_snapshot;",
    "DROP FUNCTION IF EXISTS contracts_snapshot_frozen();",
    "DROP FUNCTION IF EXISTS contracts_refuse_change();",
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
    dependencies = [("contracts", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
