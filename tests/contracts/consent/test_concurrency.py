"""Two admins deciding at the same instant (PostgreSQL: real row locks across connections)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from contracts.consent import services
from contracts.errors import Conflict
from contracts.ledger.verify import ledger_verify
from contracts.models import ConsentRecord, MigrationState, PinChange, Role
from tests import factories as f
from tests.conftest import requires_postgres
from tests.contracts.ledger_helpers import decider, propose

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def race(*calls):
    """Run each call in its own thread and database connection, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as exc:  # the outcome is what the test inspects
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_admins_consenting_at_once_write_exactly_one_record_and_the_other_gets_409(world):
    second_admin = f.MembershipFactory(
        organization=world.org, role=Role.ADMIN, user__username="acme-admin-2"
    ).user
    migration = propose(world)
    changes_before = PinChange.objects.filter(pin=world.pin).count()
    outcomes = race(
        lambda: services.migration_consent(migration=migration, decider=decider(world.admin)),
        lambda: services.migration_decline(migration=migration, decider=decider(second_admin)),
    )
    records = [o for o in outcomes if isinstance(o, ConsentRecord)]
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(records) == 1 and len(conflicts) == 1, outcomes
    assert conflicts[0].status_code == 409
    assert ConsentRecord.objects.filter(migration=migration).count() == 1
    migration.refresh_from_db()
    assert migration.state in (MigrationState.APPLIED, MigrationState.DECLINED)
    expected_changes = changes_before + (1 if migration.state == MigrationState.APPLIED else 0)
    assert PinChange.objects.filter(pin=world.pin).count() == expected_changes
    assert ledger_verify(org=world.org).intact


def test_concurrent_decisions_on_different_migrations_share_one_unbroken_chain(world):
    other_alias = f.make_alias(name="v1-chat-b", target=world.current)
    other_pin = f.make_pin(org=world.org, alias=other_alias, snapshot=world.old)
    first = propose(world)
    second = services.migration_propose(pin=other_pin, to_snapshot=world.current)
    outcomes = race(
        lambda: services.migration_decline(migration=first, decider=decider(world.admin)),
        lambda: services.migration_decline(migration=second, decider=decider(world.admin)),
    )
    assert all(isinstance(o, ConsentRecord) for o in outcomes), outcomes
    assert sorted(o.seq for o in outcomes) == [1, 2]
    result = ledger_verify(org=world.org)
    assert result.intact and result.head_seq == 2
