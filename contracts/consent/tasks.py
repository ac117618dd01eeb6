"""Beat tasks of migrations: apply scheduled consents, force undecided moves at retirement.

Both are idempotent sweeps (each migration is locked and re-checked by its service), so a task that
runs twice, or on two workers at once, records each move once.
"""

from __future__ import annotations

from celery import shared_task

from contracts.consent import services


@shared_task(
    name="contracts.consent.apply_scheduled", autoretry_for=(Exception,), max_retries=3, retry_backoff=30
)
def apply_scheduled_consents() -> list[int]:
    return services.migrations_apply_due()


@shared_task(
    name="contracts.consent.force_at_retirement", autoretry_for=(Exception,), max_retries=3, retry_backoff=30
)
def force_at_retirement() -> list[int]:
    return services.migrations_force_due()
