"""Writes of bug reports: filing (with resolution to the exact snapshot) and the staff workflow."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from contracts.bugs import receipts, tasks
from contracts.bugs.selectors import GONE, bug_policy_terms, bug_report_view_of, reproducibility
from contracts.errors import ApplicationError, Conflict, Forbidden, NotFound
from contracts.models import (
    Alias,
    BugReport,
    BugReportEvent,
    BugStatus,
    Organization,
    Snapshot,
    SnapshotStatus,
)
from contracts.outbox import organization_mail_send
from contracts.pins.selectors import resolve_snapshot_at

# A client clock a little ahead of ours is not "the future".
CLOCK_SKEW = dt.timedelta(minutes=2)
# A receipt's signed time and the observed time a customer types may differ by display rounding.
RECEIPT_TIME_TOLERANCE = dt.timedelta(minutes=1)
MAX_TEXT_CHARS = 100_000
MAX_RESPONSE_ID_CHARS = 200

TRANSITIONS: dict[str, tuple[str, ...]] = {
    BugStatus.NEW: (BugStatus.REPRODUCING, BugStatus.CANNOT_REPRODUCE),
    BugStatus.REPRODUCING: (BugStatus.REPRODUCED, BugStatus.CANNOT_REPRODUCE, BugStatus.FIXED),
    BugStatus.REPRODUCED: (BugStatus.FIXED, BugStatus.CLOSED),
    BugStatus.CANNOT_REPRODUCE: (BugStatus.CLOSED,),
    BugStatus.FIXED: (BugStatus.CLOSED,),
    BugStatus.CLOSED: (),
}


def _check_text(**texts: str) -> None:
    too_long = {
        name: f"At most {MAX_TEXT_CHARS} characters."
        for name, value in texts.items()
        if len(value) > MAX_TEXT_CHARS
    }
    if too_long:
        raise ApplicationError(f"{', '.join(too_long)} too long.", fields=too_long)
    # PostgreSQL text cannot hold NUL characters.
    with_nul = {name: "Must not contain NUL characters." for name, value in texts.items() if "\x00" in value}
    if with_nul:
        raise ApplicationError(f"{', '.join(with_nul)} contains NUL characters.", fields=with_nul)


def _check_observed_at(observed_at: dt.datetime, *, at: dt.datetime) -> None:
    if observed_at.tzinfo is None or observed_at.utcoffset() is None:
        raise ApplicationError(
            "observed_at must carry a time zone (Z or ±HH:MM).",
            fields={"observed_at": "Expected a time-zone aware instant, e.g. 2025-09-29T12:00:00Z."},
        )
    if observed_at > at + CLOCK_SKEW:
        raise ApplicationError(
            f"observed_at {observed_at.isoformat()} is in the future; it is now {at.isoformat()}.",
            fields={"observed_at": f"Must not be after now ({at.isoformat()})."},
        )


def _alias(name: str) -> Alias:
    alias = Alias.objects.select_related("family").filter(name=name).first()
    if alias is None:
        raise ApplicationError(f"No alias named {name!r}.", fields={"alias": f"Unknown alias {name!r}."})
    return alias


def _from_receipt(
    *, org: Organization, receipt: Any, alias: str, observed_at: dt.datetime | None, response_id: str
) -> tuple[Snapshot, str, dt.datetime, str, dict[str, Any]]:
    """Verify a receipt and reconcile it with what was typed: (snapshot, alias, time, response id, stored)."""
    payload = receipts.receipt_verify(receipt)
    if payload["org"] != org.slug:
        raise ApplicationError(
            "This receipt was issued to another organisation.",
            fields={"receipt": "Issued to another organisation; file it from that organisation's account."},
        )
    if alias and alias != payload["alias"]:
        raise ApplicationError(
            f"The receipt is for alias {payload['alias']!r}, not {alias!r}.",
            fields={"alias": f"The receipt says {payload['alias']!r}."},
        )
    if response_id and response_id != payload["response_id"]:
        raise ApplicationError(
            f"The receipt is for response {payload['response_id']!r}, not {response_id!r}.",
            fields={"response_id": f"The receipt says {payload['response_id']!r}."},
        )
    if observed_at is not None and abs(observed_at - payload["time"]) > RECEIPT_TIME_TOLERANCE:
        raise ApplicationError(
            f"The receipt was issued at {payload['time'].isoformat()}, not {observed_at.isoformat()}.",
            fields={
                "observed_at": f"The receipt says {payload['time'].isoformat()}; leave observed_at empty."
            },
        )
    snapshot = Snapshot.objects.select_related("family").filter(name=payload["snapshot"]).first()
    if snapshot is None:
        raise ApplicationError(
            f"The receipt names snapshot {payload['snapshot']!r}, which does not exist.",
            fields={"receipt": "Unknown snapshot."},
        )
    stored = {field: receipt[field] for field in receipts.RECEIPT_FIELDS}
    return snapshot, payload["alias"], payload["time"], payload["response_id"], stored


@transaction.atomic
def bug_report_file(
    *,
    org: Organization,
    alias: str = "",
    observed_at: dt.datetime | None = None,
    reporter: AbstractBaseUser | None = None,
    reporter_email: str = "",
    response_id: str = "",
    receipt: Any = None,
    prompt: str = "",
    output: str = "",
    expected: str = "",
) -> BugReport:
    """File a report on the snapshot that produced an output, and route it to the owning team.

    Without a receipt the snapshot is the one that served `organization` on `alias` at `observed_at`
    (pin history, then alias history). A receipt, when given, is verified and decides instead; alias,
    time and response id may then be left out. Nothing is written when anything is refused.
    """
    now = timezone.now()
    response_id = (response_id or "").strip()
    alias = (alias or "").strip()
    _check_text(
        prompt=prompt,
        output=output,
        expected=expected,
        alias=alias,
        response_id=response_id,
        reporter_email=reporter_email,
    )
    if len(response_id) > MAX_RESPONSE_ID_CHARS:
        raise ApplicationError(
            "response_id too long.", fields={"response_id": f"At most {MAX_RESPONSE_ID_CHARS} characters."}
        )
    if observed_at is not None:
        _check_observed_at(observed_at, at=now)
    stored_receipt = None
    if receipt is not None:
        snapshot, alias, observed_at, response_id, stored_receipt = _from_receipt(
            org=org,
            receipt=receipt,
            alias=alias,
            observed_at=observed_at,
            response_id=response_id,
        )
        _check_observed_at(observed_at, at=now)
        alias_obj = _alias(alias)
        resolved_by = "receipt"
    else:
        missing = {
            name: "Required (or give an output receipt)."
            for name, value in (("alias", alias), ("observed_at", observed_at))
            if not value
        }
        if missing:
            raise ApplicationError(f"{' and '.join(missing)} required.", fields=missing)
        alias_obj = _alias(alias)
        try:
            snapshot = resolve_snapshot_at(org=org, alias=alias, at=observed_at)
        except NotFound as exc:
            raise ApplicationError(
                f"observed_at is before alias {alias!r} existed: {exc.message}",
                fields={"observed_at": f"Before {alias!r} existed. {exc.fields.get('at', '')}".strip()},
            ) from exc
        resolved_by = "history"
    if reporter is not None and not reporter_email:
        reporter_email = getattr(reporter, "email", "") or ""
    report = BugReport.objects.create(
        organization=org,
        reporter=reporter if getattr(reporter, "pk", None) else None,
        reporter_email=reporter_email,
        alias=alias_obj,
        observed_at=observed_at,
        response_id=response_id,
        receipt=stored_receipt,
        prompt=prompt,
        output=output,
        expected=expected,
        snapshot=snapshot,
        resolved_by=resolved_by,
        owning_team=snapshot.family.owning_team,
        status=BugStatus.NEW,
        created_at=now,
        updated_at=now,
    )
    BugReportEvent.objects.create(
        report=report,
        status=BugStatus.NEW,
        note=f"Filed; resolved by {resolved_by} to {snapshot.name}; routed to {report.owning_team}.",
        actor=report.reporter,
        created_at=now,
    )
    bug_report_notify(report=report, kind="filed")
    return report


@transaction.atomic
def bug_report_transition(
    *,
    report: BugReport,
    status: str,
    acting_user: AbstractBaseUser | None = None,
    note: str = "",
    fixed_in: Snapshot | None = None,
) -> BugReport:
    """Move a report along new → reproducing → reproduced / cannot reproduce / fixed → closed.

    "Cannot reproduce (artifact gone)" answers with the organisation's contract policy text, word for
    word: no free text is accepted for it, and it is only allowed once the artifact is purged (a retired
    artifact within retention is reproducible on request).
    """
    if acting_user is not None and not getattr(acting_user, "is_staff", False):
        raise Forbidden("Only vendor staff triage bug reports.")
    if status not in BugStatus.values:
        raise ApplicationError(
            f"Unknown status {status!r}.", fields={"status": f"One of: {', '.join(BugStatus.values)}."}
        )
    note = (note or "").strip()
    _check_text(note=note)
    report = (
        BugReport.objects.select_for_update()
        .select_related("organization", "snapshot", "snapshot__family")
        .get(pk=report.pk)
    )
    allowed = TRANSITIONS[report.status]
    if status not in allowed:
        raise Conflict(
            f"A {report.get_status_display().lower()} report cannot become {BugStatus(status).label.lower()}.",
            fields={"status": f"From {report.status}: {', '.join(allowed) or 'no further status'}."},
        )
    now = timezone.now()
    update_fields = ["status", "updated_at"]
    if status == BugStatus.CANNOT_REPRODUCE:
        if note:
            raise ApplicationError(
                "The answer for an artifact that is gone is the contract's policy text; free text is not taken.",
                fields={"note": "Leave empty: the organisation's retired-artifact policy is the answer."},
            )
        if reproducibility(report.snapshot, at=now) != GONE:
            snapshot_status = report.snapshot.status_at(now)
            retained = (
                f" and retained until {report.snapshot.retention_until:%Y-%m-%d}: restore it to reproduce"
                if snapshot_status == SnapshotStatus.RETIRED and report.snapshot.retention_until
                else ": it can still be run"
            )
            raise Conflict(
                f"{report.snapshot.name} is {snapshot_status}{retained}, so it is not gone.",
                fields={"status": "Only once the snapshot is purged (past its retention)."},
            )
        terms = bug_policy_terms(org=report.organization)
        if terms is None or not terms.retired_bug_policy.strip():
            raise Conflict(
                f"{report.organization.name} has accepted no contract terms with a retired-artifact policy.",
                fields={"status": "No policy text to answer with."},
            )
        note = terms.retired_bug_policy
    if status == BugStatus.FIXED:
        if fixed_in is None:
            raise ApplicationError(
                "Name the snapshot that fixes it.", fields={"fixed_in": "Required for fixed."}
            )
        if fixed_in.family_id != report.snapshot.family_id or not fixed_in.is_published:
            raise ApplicationError(
                f"{fixed_in.name} is not a published snapshot of the {report.snapshot.family.slug} family.",
                fields={"fixed_in": f"A published {report.snapshot.family.slug} snapshot."},
            )
        report.fixed_in = fixed_in
        update_fields.append("fixed_in")
        note = note or f"Fixed in {fixed_in.name}."
    report.status = status
    report.updated_at = now
    report.save(update_fields=update_fields)
    event = BugReportEvent.objects.create(
        report=report,
        status=status,
        note=note,
        actor=acting_user if getattr(acting_user, "pk", None) else None,
        created_at=now,
    )
    bug_report_notify(report=report, kind="status", event=event)
    return report


# --------------------------------------------------------------------------------------------
# E-mail: the owning team on filing (a vendor-side Celery mail), the reporter on every status change
# (through the organisation's outbox); rendered from templates/contracts/bugs/email/.
# --------------------------------------------------------------------------------------------

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
        event_id = event.pk if event else None
        transaction.on_commit(lambda: tasks.bug_report_email_task.delay(report.pk, kind, event_id))
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
