"""The two bug-report e-mails: to the owning team when a report is filed, to the reporter on every
status change. Rendered from templates/contracts/bugs/email/."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from contracts.bugs.selectors import bug_report_view_of
from contracts.models import BugReport, BugReportEvent
from contracts.outbox import organization_mail_send

logger = logging.getLogger(__name__)


def _message(*, report: BugReport, kind: str, event: BugReportEvent | None) -> tuple[str, str, str] | None:
    """(recipient, subject, body) or None when there is nobody to write to."""
    view = bug_report_view_of(report=report)
    context = {"view": view, "report": report, "event": event, "site_url": settings.SITE_URL}
    if kind == "filed":
        recipient = report.snapshot.family.owning_team_email
        context["url"] = settings.SITE_URL + reverse(
            "portal:staff_bug_detail", kwargs={"report_id": report.pk}
        )
        subject = (
            f"[bug #{report.pk}] {report.organization.slug}: {report.alias.name} on {report.snapshot.name}"
        )
        template = "contracts/bugs/email/filed.txt"
    else:
        recipient = report.reporter_email
        context["url"] = settings.SITE_URL + reverse(
            "portal:bug_detail", kwargs={"org": report.organization.slug, "report_id": report.pk}
        )
        label = event.get_status_display() if event else report.get_status_display()
        subject = f"Your bug report #{report.pk} on {report.snapshot.name}: {label}"
        template = "contracts/bugs/email/status.txt"
    if not recipient:
        logger.warning("bug report %s: no recipient for the %s e-mail", report.pk, kind)
        return None
    return recipient, subject, render_to_string(template, context)


def bug_report_notify(*, report: BugReport, kind: str, event: BugReportEvent | None = None) -> None:
    """Inside the writing transaction.

    The owning team's mail is the vendor's own business: a Celery mail task after commit, never a row
    in the customer's notice log. The reporter's mail goes through the organisation's outbox.
    """
    if kind == "filed":
        from contracts.bugs.tasks import bug_report_email_task

        event_id = event.pk if event else None
        transaction.on_commit(lambda: bug_report_email_task.delay(report.pk, kind, event_id))
        return
    message = _message(report=report, kind=kind, event=event)
    if message is None:
        return
    recipient, subject, body = message
    organization_mail_send(
        org=report.organization,
        kind=f"bug-report-{kind}",
        subject=subject,
        body=body,
        recipients=[recipient],
        dedupe_key=f"bug:{report.pk}:{kind}:{event.pk if event else 0}",
    )


def bug_report_email_send(*, report_id: int, kind: str, event_id: int | None = None) -> int:
    """The fallback path (no notification outbox): plain Django mail, from a Celery task."""
    report = (
        BugReport.objects.select_related("organization", "alias", "snapshot", "snapshot__family", "fixed_in")
        .filter(pk=report_id)
        .first()
    )
    if report is None:
        return 0
    event = BugReportEvent.objects.filter(pk=event_id, report=report).first() if event_id else None
    message = _message(report=report, kind=kind, event=event)
    if message is None:
        return 0
    recipient, subject, body = message
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient])
