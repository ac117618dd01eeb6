"""Rendering of notice e-mails: one message per recipient (each with its own acknowledge or
unsubscribe link), HTML and plain text from templates/notifications/email/."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from contracts.gateway.selectors import usage_recent_requests
from contracts.instants import instant_words
from contracts.models import Membership
from contracts.pins.selectors import effective_retirement
from notifications.models import CalendarToken, Milestone, Notice

ACK_SALT = "notifications.ack"
UNSUBSCRIBE_SALT = "notifications.unsubscribe"


def ack_token(*, notice: Notice, email: str) -> str:
    # An escalation acknowledges the notice it escalates.
    target = notice.escalated_from_id or notice.pk
    return signing.dumps({"n": target, "e": email}, salt=ACK_SALT)


def unsubscribe_token(*, org_id: int, email: str) -> str:
    return signing.dumps({"o": org_id, "e": email}, salt=UNSUBSCRIBE_SALT)


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


HEADLINES = {
    Milestone.DEPRECATION_ANNOUNCED: "{snapshot} is deprecated",
    Milestone.NOTICE_DATE: "Contractual notice: {snapshot} retires on {retires}",
    Milestone.RETIREMENT_DAY: "{snapshot} retires today",
    Milestone.FORCED_MIGRATION_APPLIED: "{snapshot} retired: your pin moved to {target}",
    Milestone.MIGRATION_APPLIED: "Migration applied: {snapshot} → {target}",
    Milestone.MIGRATION_PROPOSED: "Migration proposed: {snapshot} → {target}",
    Milestone.DEADLINE_APPROACHING: "Decision due by {deadline}: {snapshot} → {target}",
    Milestone.STILL_IN_USE: "{snapshot} retires on {retires} and you still call it",
    Milestone.MIGRATION_ROLLED_BACK: "Migration rolled back: your pin is on {snapshot} again",
    Milestone.MIGRATION_DECLINED: "Migration declined: your pin stays on {snapshot}",
    Milestone.MIGRATION_DEFERRED: "Migration deferred until {deferred}: {snapshot} → {target}",
}
COUNTDOWN = (Milestone.T_90, Milestone.T_30, Milestone.T_7, Milestone.T_1)

# Notices about a snapshot's retirement tell the organisation how much it still calls it.
USAGE_MILESTONES = frozenset(
    {
        Milestone.DEPRECATION_ANNOUNCED,
        Milestone.NOTICE_DATE,
        Milestone.T_90,
        Milestone.T_30,
        Milestone.T_7,
        Milestone.T_1,
        Milestone.RETIREMENT_DAY,
        Milestone.STILL_IN_USE,
    }
)


def _time_left(retires: dt.datetime, now: dt.datetime) -> str:
    """Time to retirement in words, from the moment the notice is sent (never from when it was due)."""
    days = round((retires - now).total_seconds() / 86400)
    if retires <= now:
        return f"retired on {instant_words(retires, with_time=False)}"
    if days <= 0:
        return f"retires today ({instant_words(retires)})"
    if days == 1:
        return f"retires tomorrow ({instant_words(retires)})"
    return f"retires in {days} days ({instant_words(retires, with_time=False)})"


def headline_for(
    notice: Notice,
    *,
    snapshot,
    target,
    migration,
    retires: dt.datetime | None,
    now: dt.datetime,
    late: bool,
) -> str:
    """The notice's headline, true at `now`: countdowns count from now, a late notice says so."""
    name = snapshot.name if snapshot else ""
    retired_long_ago = retires is not None and retires <= now - dt.timedelta(days=1)
    countdown = notice.milestone in COUNTDOWN or (
        notice.milestone == Milestone.RETIREMENT_DAY and retired_long_ago
    )
    if countdown and retires is not None:
        headline = f"{name} {_time_left(retires, now)}"
    elif notice.milestone in HEADLINES:
        headline = HEADLINES[notice.milestone].format(
            snapshot=name,
            target=target.name if target else "",
            retires=instant_words(retires, with_time=False) if retires else "",
            deadline=instant_words(migration.deadline, with_time=False)
            if migration and migration.deadline
            else "",
            deferred=instant_words(migration.deferred_until, with_time=False)
            if migration and migration.deferred_until
            else "",
        )
    else:
        headline = notice.get_milestone_display()
    return f"Late notice: {headline}" if late else headline


def notice_context(notice: Notice, *, truth=None) -> dict[str, Any]:
    org = notice.organization
    # An escalation speaks about the notice it escalates.
    about = notice.escalated_from or notice
    snapshot = about.snapshot
    target = None
    migration = about.migration
    if migration is not None:
        snapshot, target = migration.from_snapshot, migration.to_snapshot
    elif snapshot is not None:
        target = snapshot.replacement
    portal_url = absolute(f"/o/{org.slug}/")
    diff_url = absolute(f"/o/{org.slug}/diff/{snapshot.name}...{target.name}/") if snapshot and target else ""
    token = CalendarToken.objects.filter(organization=org, revoked_at__isnull=True).first()
    calendar_url = (
        absolute(reverse("notifications-api:calendar") + f"?token={token.token}")
        if token
        else absolute(f"/o/{org.slug}/notifications/")
    )
    if migration is not None and migration.state == "rolled-back":
        # After a rollback the pin is back on the snapshot the migration left.
        target = migration.to_snapshot
    retirement = truth.retirement if truth is not None else None
    if retirement is None and snapshot is not None and notice.migration_id is None:
        retirement = effective_retirement(org=org, snapshot=snapshot)
    retires = retirement.effective if retirement is not None else (snapshot.retires_at if snapshot else None)
    late = bool(truth is not None and truth.late)
    now = timezone.now()
    headline = notice.subject
    if not headline and notice.milestone != Milestone.ESCALATION:
        headline = headline_for(
            notice, snapshot=snapshot, target=target, migration=migration, retires=retires, now=now, late=late
        )
    recent_use = None
    if snapshot is not None and about.milestone in USAGE_MILESTONES:
        at = notice.due_at
        calls_7d, last_seen = usage_recent_requests(org_id=org.pk, snapshot_id=snapshot.pk, at=at, days=7)
        calls_30d, _ = usage_recent_requests(org_id=org.pk, snapshot_id=snapshot.pk, at=at, days=30)
        recent_use = {"calls_7d": calls_7d, "calls_30d": calls_30d, "last_seen": last_seen}
    if notice.milestone == Milestone.ESCALATION and notice.escalated_from is not None:
        headline = headline or f"Unacknowledged notice: {notice_context(notice.escalated_from)['headline']}"
    return {
        "notice": notice,
        "org": org,
        "snapshot": snapshot,
        "target": target,
        "migration": migration,
        "headline": headline or notice.get_milestone_display(),
        "portal_url": portal_url,
        "notifications_url": absolute(f"/o/{org.slug}/notifications/"),
        "migrations_url": absolute(f"/o/{org.slug}/migrations/"),
        "diff_url": diff_url,
        "calendar_url": calendar_url,
        "recent_use": recent_use,
        "usage_url": absolute(f"/o/{org.slug}/usage/"),
        "retirement": retirement,
        "retires": retires,
        "late": late,
        "due_words": instant_words(truth.due_at) if late and truth.due_at else "",
        "sent_words": instant_words(now),
    }


def message_id(*, notice: Notice, email: str) -> str:
    """Stable per notice and recipient: a resend after a crash carries the same Message-ID, so
    mail systems that deduplicate on it show one message."""
    digest = hashlib.sha256(f"{notice.pk}:{email}".encode()).hexdigest()[:16]
    domain = settings.SITE_URL.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "portal.local"
    return f"<notice-{notice.pk}-{digest}@{domain}>"


def member_emails(*, org_id: int) -> set[str]:
    """Addresses of the organisation's own members: the only recipients whose mail may carry the
    calendar link (a capability), never a named outside contact."""
    return {
        e.lower()
        for e in Membership.objects.filter(organization_id=org_id, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    }


def build_messages(
    notice: Notice, recipients: list[str], context: dict[str, Any]
) -> list[EmailMultiAlternatives]:
    messages = []
    members = member_emails(org_id=notice.organization_id)
    for email in recipients:
        ctx = dict(context, recipient=email, ack_url="", unsubscribe_url="")
        if email.lower() not in members:
            ctx["calendar_url"] = context["notifications_url"]
        headers = {
            "Message-ID": message_id(notice=notice, email=email),
            "X-Notice-Id": str(notice.pk),
            "X-Notice-Milestone": notice.milestone,
        }
        if notice.legal:
            ctx["ack_url"] = absolute(
                reverse("portal:notice-ack", kwargs={"token": ack_token(notice=notice, email=email)})
            )
        else:
            url = absolute(
                reverse(
                    "portal:notice-unsubscribe",
                    kwargs={"token": unsubscribe_token(org_id=notice.organization_id, email=email)},
                )
            )
            ctx["unsubscribe_url"] = url
            headers["List-Unsubscribe"] = f"<{url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text = render_to_string("notifications/email/notice.txt", ctx)
        html = render_to_string("notifications/email/notice.html", ctx)
        subject = f"[{notice.organization.name}] {ctx['headline']}"
        message = EmailMultiAlternatives(
            subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[email], headers=headers
        )
        message.attach_alternative(html, "text/html")
        messages.append(message)
    return messages
