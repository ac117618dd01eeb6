"""Demo ledger checkpoints: signed daily checkpoints of every demo organisation's chain."""

from __future__ import annotations

from contracts.ledger.checkpoints import checkpoints_create_due


def seed_checkpoints() -> list[str]:
    """Demo data: a signed checkpoint of every demo ledger (idempotent: only when there is news)."""
    checkpoints_create_due()
    return []
