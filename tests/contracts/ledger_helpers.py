"""Helpers for the terms, migrations and ledger tests (issue 4)."""

from __future__ import annotations

import datetime as dt

from contracts.consent import services
from contracts.models import ConsentRecord, ContractTerms, Migration, PinChange, Role
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
