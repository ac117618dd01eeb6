"""Helpers for the terms, migrations and ledger tests (issue 4)."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from django.db import connection

from contracts.consent import services
from contracts.ledger.chain import ledger_append
from contracts.models import ConsentRecord, ContractTerms, LedgerAction, Migration, PinChange, Role
from tests import factories as f


def make_terms(
    version: str = "2025-01", *, tier: str = "standard", effective_at: dt.datetime | None = None, **params
) -> ContractTerms:
    params.setdefault("retired_bug_policy", "Retired artifacts are kept for reproduction.")
    return services.terms_create(
        version=version,
        title="Standard Version Contract",
        tier=tier,
        body=f"Terms {version}: the vendor gives notice before retiring a snapshot.",
        effective_at=effective_at or f.days(-30),
        **params,
    )


def decider(user, role: str = Role.ADMIN) -> services.Decider:
    return services.Decider(user=user, ip="198.51.100.7", user_agent="pytest-agent/1.0", role=role)


def accept(org, terms, user) -> ConsentRecord:
    return services.terms_accept(org=org, terms=terms, decider=decider(user), confirmed=True)


def propose(world, *, to=None, now=None) -> Migration:
    return services.migration_propose(pin=world.pin, to_snapshot=to or world.current, at=now)


def counts(org) -> tuple[int, int, str]:
    """(ledger records, pin changes, pinned snapshot): what a refused operation must leave alone."""
    from contracts.models import Pin

    pin = Pin.objects.filter(organization=org).order_by("pk").first()
    return (
        ConsentRecord.objects.filter(organization=org).count(),
        PinChange.objects.filter(organization=org).count(),
        pin.snapshot.name if pin else "",
    )


def append_records(org, n: int) -> list[ConsentRecord]:
    return [
        ledger_append(
            org=org,
            action=LedgerAction.BASELINE,
            actor_email=f"a{i}@x.example",
            details={"i": i},
            ip="192.0.2.1",
            user_agent="ua",
        )
        for i in range(n)
    ]


@contextmanager
def tampering():
    """Raw SQL that bypasses the models; on PostgreSQL triggers are switched off for this transaction
    (session_replication_role, superuser only) to simulate an attacker with full database rights."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        yield cursor
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
