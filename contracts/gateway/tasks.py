"""Celery tasks of the data plane (beat): change-log entries that time makes due, and pruning."""

from __future__ import annotations

from celery import shared_task


def _services():
    from contracts.gateway import changelog, services  # noqa: PLC0415 -- task -> service, late by rule

    return changelog, services


@shared_task(name="contracts.gateway.grants_expire")
def grants_expire() -> int:
    """Record extended-support grants that ran out since the last run (every minute)."""
    _, services = _services()
    return services.pin_map_grants_expire()


@shared_task(name="contracts.gateway.changes_prune")
def changes_prune() -> int:
    """Drop change-log entries past PIN_MAP_CHANGE_RETENTION_DAYS (the newest one always stays)."""
    changelog, _ = _services()
    return changelog.pin_map_changes_prune()
