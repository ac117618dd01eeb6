"""Celery tasks of bug reports: ids in, load, call the mail service; retries owned here."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task


@shared_task(
    name="contracts.bugs.email",
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=6,
)
def bug_report_email_task(report_id: int, kind: str, event_id: int | None = None) -> int:
    return _services().bug_report_email_send(report_id=report_id, kind=kind, event_id=event_id)


def _services():
    from contracts.bugs import services  # noqa: PLC0415 -- a task reaches its service late (services queue tasks)

    return services
