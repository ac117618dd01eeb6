"""Rendering of notice e-mails: one message per recipient (each with its own acknowledge or
unsubscribe link), HTML and plain text from templates/notifications/email/."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

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


def deferral_text(
    *, seq: int, deferred_until: dt.datetime | None, limit: dt.datetime | None, from_name: str, to_name: str
) -> tuple[str, str]:
    """Subject and body of the notice of one deferral (one ledger record): the end date that this
    deferral set, not the migration's latest, so a second deferral's notice names its own."""
    until = instant_words(deferred_until, with_time=False) if deferred_until else "a later date"
    subject = HEADLINES[Milestone.MIGRATION_DEFERRED].format(
        deferred=until, snapshot=from_name, target=to_name
    )
    allowed = f" (your terms allow at most {instant_words(limit)})" if limit else ""
    body = (
        f"The migration from {from_name} to {to_name} is deferred until "
        f"{instant_words(deferred_until) if deferred_until else until}{allowed}. "
        f"This deferral is record #{seq} of your consent ledger."
    )
    return subject[:300], body


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


def calendar_url_for(*, org_slug: str, token: str | None) -> str:
    if token:
        return absolute(reverse("notifications-api:calendar") + f"?token={token}")
    return absolute(f"/o/{org_slug}/notifications/")


_LOOK_UP = object()


def usage_subject(notice: Notice) -> int | None:
    """The snapshot whose recent use the notice reports (None: the notice reports no usage)."""
    about = notice.escalated_from or notice
    if about.milestone not in USAGE_MILESTONES:
        return None
    if about.migration is not None:
        return about.migration.from_snapshot_id
    return about.snapshot_id


def recent_use_from(hours: list[tuple[dt.datetime, int]], *, at: dt.datetime) -> dict[str, Any]:
    """What `usage_recent_requests` answers for 7 and 30 days, from prefetched usage hours."""
    week = [(hour, n) for hour, n in hours if hour >= at - dt.timedelta(days=7)]
    month = [(hour, n) for hour, n in hours if hour >= at - dt.timedelta(days=30)]
    return {
        "calls_7d": sum(n for _, n in week),
        "calls_30d": sum(n for _, n in month),
        "last_seen": max((hour for hour, _ in week), default=None),
    }


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


def notice_context(
    notice: Notice,
    *,
    org: Any = None,
    calendar_url: str | None = None,
    recent_use: Any = _LOOK_UP,
    truth: Any = None,
) -> dict[str, Any]:
    """What the templates show. `org`, `calendar_url` and `recent_use` default to the notice's own;
    the batch renderer passes stand-ins (and the recent use it computed from one query for the
    batch) so one rendering serves every organisation of a batch. `truth` is the send-time check's
    verdict (`services.notice_truth`): its effective retirement and whether the notice is late."""
    if org is None:
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
    if calendar_url is None:
        token = CalendarToken.objects.filter(organization=org, revoked_at__isnull=True).first()
        calendar_url = calendar_url_for(org_slug=org.slug, token=token.token if token else None)
    if migration is not None and migration.state == "rolled-back":
        # After a rollback the pin is back on the snapshot the migration left.
        target = migration.to_snapshot
    retirement = truth.retirement if truth is not None else None
    if retirement is None and snapshot is not None and notice.migration_id is None:
        retirement = effective_retirement(org=notice.organization_id, snapshot=snapshot)
    retires = retirement.effective if retirement is not None else (snapshot.retires_at if snapshot else None)
    late = bool(truth is not None and truth.late)
    now = timezone.now()
    headline = notice.subject
    if headline and late:  # a subject written when the notice was planned (a deferral's)
        headline = f"Late notice: {headline}"
    if not headline and notice.milestone != Milestone.ESCALATION:
        headline = headline_for(
            notice, snapshot=snapshot, target=target, migration=migration, retires=retires, now=now, late=late
        )
    if recent_use is _LOOK_UP:
        recent_use = None
        if snapshot is not None and about.milestone in USAGE_MILESTONES:
            at = notice.due_at
            calls_7d, last_seen = usage_recent_requests(org_id=org.pk, snapshot_id=snapshot.pk, at=at, days=7)
            calls_30d, _ = usage_recent_requests(org_id=org.pk, snapshot_id=snapshot.pk, at=at, days=30)
            recent_use = {"calls_7d": calls_7d, "calls_30d": calls_30d, "last_seen": last_seen}
    if notice.milestone == Milestone.ESCALATION and notice.escalated_from is not None:
        earlier = notice_context(notice.escalated_from, org=org, calendar_url=calendar_url, recent_use=None)
        headline = headline or f"Unacknowledged notice: {earlier['headline']}"
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


def recipient_links(notice: Notice, email: str) -> tuple[str, str, dict[str, str]]:
    """(ack URL, unsubscribe URL, headers) of one recipient's copy: a legal notice asks for an
    acknowledgement, an optional one carries List-Unsubscribe."""
    headers = {
        "Message-ID": message_id(notice=notice, email=email),
        "X-Notice-Id": str(notice.pk),
        "X-Notice-Milestone": notice.milestone,
    }
    if notice.legal:
        token = ack_token(notice=notice, email=email)
        return absolute(reverse("portal:notice-ack", kwargs={"token": token})), "", headers
    token = unsubscribe_token(org_id=notice.organization_id, email=email)
    url = absolute(reverse("portal:notice-unsubscribe", kwargs={"token": token}))
    headers["List-Unsubscribe"] = f"<{url}>"
    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return "", url, headers


def _message(*, subject: str, text: str, html: str, email: str, headers: dict[str, str]):
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[email], headers=headers
    )
    message.attach_alternative(html, "text/html")
    return message


def member_emails(*, org_id: int) -> set[str]:
    """Addresses of the organisation's own members: the only recipients whose mail may carry the
    calendar link (a capability), never a named outside contact."""
    return {
        e.lower()
        for e in Membership.objects.filter(organization_id=org_id, user__is_active=True)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    }


def members_emails(*, org_ids: set[int]) -> dict[int, set[str]]:
    """`member_emails` for many organisations, in one query (every organisation has its entry)."""
    found: dict[int, set[str]] = {org_id: set() for org_id in org_ids}
    for org_id, email in (
        Membership.objects.filter(organization_id__in=org_ids, user__is_active=True)
        .exclude(user__email="")
        .values_list("organization_id", "user__email")
    ):
        found[org_id].add(email.lower())
    return found


def build_messages(
    notice: Notice, recipients: list[str], context: dict[str, Any]
) -> list[EmailMultiAlternatives]:
    """One message per recipient, each rendered on its own (the reference the batch renderer matches)."""
    messages = []
    members = member_emails(org_id=notice.organization_id)
    for email in recipients:
        ack_url, unsubscribe_url, headers = recipient_links(notice, email)
        ctx = dict(context, recipient=email, ack_url=ack_url, unsubscribe_url=unsubscribe_url)
        if email.lower() not in members:
            ctx["calendar_url"] = context["notifications_url"]
        messages.append(
            _message(
                subject=f"[{context['org'].name}] {ctx['headline']}",
                text=render_to_string(TEXT_TEMPLATE, ctx),
                html=render_to_string(HTML_TEMPLATE, ctx),
                email=email,
                headers=headers,
            )
        )
    return messages


TEXT_TEMPLATE = "notifications/email/notice.txt"
HTML_TEMPLATE = "notifications/email/notice.html"


@dataclass(frozen=True)
class _StandIn:
    """The organisation as the templates see it while rendering once for a whole batch."""

    pk: int
    name: str
    slug: str


class BatchRenderer:
    """Renders each template once per batch context, not once per message.

    A batch context is what the text says (milestone, snapshot, replacement, migration, body,
    legal or not); the organisation's name and slug, its calendar link and each recipient's own
    links are placeholders (with a per-renderer random tag, so no data can forge one) filled in per
    message: as they are in the text part, HTML-escaped in the HTML part, exactly as the template's
    autoescaping would have written them. tests/notifications/test_email.py checks that every
    message equals what `build_messages` renders on its own.
    """

    def __init__(
        self,
        *,
        calendar_tokens: dict[int, str],
        usage: dict[tuple[int, int], list[tuple[dt.datetime, int]]] | None = None,
        members: dict[int, set[str]] | None = None,
    ) -> None:
        self._calendar_tokens = calendar_tokens
        self._usage = usage
        self._tag = secrets.token_hex(6)
        self._pattern = re.compile(rf"@@{self._tag}:(\w+)@@")
        self._rendered: dict[tuple, tuple[str, str, str]] = {}
        self.renders = 0
        self._members: dict[int, set[str]] = dict(members) if members is not None else {}

    def _placeholder(self, name: str) -> str:
        return f"@@{self._tag}:{name}@@"

    def _templates(self, notice: Notice, truth: Any = None) -> tuple[str, str, str]:
        stand_in = _StandIn(pk=0, name=self._placeholder("org_name"), slug=self._placeholder("org_slug"))
        # Recent use is the organisation's own figure: part of the batch context (the key).
        subject = usage_subject(notice)
        if subject is None:
            recent_use = None
        elif self._usage is None:
            recent_use = notice_context(notice, calendar_url="", truth=truth)["recent_use"]
        else:
            hours = self._usage.get((notice.organization_id, subject), [])
            recent_use = recent_use_from(hours, at=notice.due_at)
        context = notice_context(
            notice,
            org=stand_in,
            calendar_url=self._placeholder("calendar_url"),
            recent_use=recent_use,
            truth=truth,
        )
        snapshot, target, migration = context["snapshot"], context["target"], context["migration"]
        retirement = context["retirement"]
        key = (
            tuple(sorted(recent_use.items())) if recent_use else None,
            context["headline"],
            notice.milestone,
            notice.legal,
            notice.body,
            snapshot.pk if snapshot else None,
            target.pk if target else None,
            migration.pk if migration else None,
            # The send-time truth: effective retirement (extended support) and lateness.
            context["retires"],
            (retirement.retires_at, retirement.extended, retirement.extended_until) if retirement else None,
            context["late"],
            context["due_words"],
            context["sent_words"] if context["late"] else None,
        )
        rendered = self._rendered.get(key)
        if rendered is None:
            ctx = dict(
                context,
                recipient=self._placeholder("recipient"),
                ack_url=self._placeholder("ack_url") if notice.legal else "",
                unsubscribe_url="" if notice.legal else self._placeholder("unsubscribe_url"),
            )
            rendered = (
                context["headline"],
                render_to_string(TEXT_TEMPLATE, ctx),
                render_to_string(HTML_TEMPLATE, ctx),
            )
            self._rendered[key] = rendered
            self.renders += 1
        return rendered

    def messages(
        self, notice: Notice, recipients: list[str], *, truth: Any = None
    ) -> list[EmailMultiAlternatives]:
        headline, text, html = self._templates(notice, truth)
        org = notice.organization
        token = self._calendar_tokens.get(org.pk)
        if org.pk not in self._members:
            self._members[org.pk] = member_emails(org_id=org.pk)
        members = self._members[org.pk]
        notifications_url = absolute(f"/o/{org.slug}/notifications/")
        shared = {
            "org_name": org.name,
            "org_slug": org.slug,
            "calendar_url": calendar_url_for(org_slug=org.slug, token=token),
        }
        messages = []
        for email in recipients:
            ack_url, unsubscribe_url, headers = recipient_links(notice, email)
            values = dict(shared, recipient=email, ack_url=ack_url, unsubscribe_url=unsubscribe_url)
            if email.lower() not in members:
                # The calendar link is a capability: only the organisation's own members get it.
                values["calendar_url"] = notifications_url
            escaped = {name: escape(value) for name, value in values.items()}
            messages.append(
                _message(
                    subject=f"[{org.name}] {headline}",
                    text=self._pattern.sub(lambda m, v=values: v[m.group(1)], text),
                    html=self._pattern.sub(lambda m, v=escaped: v[m.group(1)], html),
                    email=email,
                    headers=headers,
                )
            )
        return messages
