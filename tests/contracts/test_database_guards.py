"""The database itself refuses rewrites of published artifacts and histories (PostgreSQL triggers)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, InternalError, connection, transaction

from tests.conftest import requires_postgres

pytestmark = [pytest.mark.django_db, requires_postgres]


def _raw(sql: str, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_trigger_refuses_changing_a_published_digest(world):
    with pytest.raises((IntegrityError, InternalError), match="immutable"):
        _raw("UPDATE contracts_snapshot SET digest = %s WHERE id = %s", ("c" * 64, world.old.pk))


def test_trigger_refuses_changing_a_published_config(world):
    with pytest.raises((IntegrityError, InternalError), match="immutable"):
        _raw("UPDATE contracts_snapshot SET config = '{}'::jsonb WHERE id = %s", (world.old.pk,))


def test_trigger_allows_lifecycle_dates_on_a_published_snapshot(world):
    _raw("UPDATE contracts_snapshot SET latency_p50_ms = 123 WHERE id = %s", (world.old.pk,))
    world.old.refresh_from_db()
    assert world.old.latency_p50_ms == 123


@pytest.mark.parametrize("table", ["contracts_aliasmove", "contracts_pinchange"])
def test_trigger_refuses_update_and_delete_of_history(world, table):
    with pytest.raises((IntegrityError, InternalError), match="append-only"):
        _raw(f"UPDATE {table} SET reason = 'rewritten'")
    with pytest.raises((IntegrityError, InternalError), match="append-only"):
        _raw(f"DELETE FROM {table}")
