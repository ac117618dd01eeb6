"""Writes of the notifications app: planning the outbox, claiming and sending notices, webhook
endpoints and deliveries, contacts, acknowledgement and escalation, calendar tokens.

Exactly-once, as far as a database can promise it: a notice is inserted once (unique constraints,
`ON CONFLICT DO NOTHING`), claimed by one worker at a time (`SELECT … FOR UPDATE SKIP LOCKED` plus a
lease, so a crashed claim becomes claimable again when the lease runs out) and marked sent only by
the claim that sent it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.errors import ApplicationError, Conflict, NotFound
from contracts.gateway.selectors import usage_hours_many
from contracts.instants import instant_words, parse_instant
from contracts.models import (
    AuditAction,
    ConsentRecord,
    LedgerAction,
    Membership,
    Migration,
    MigrationState,
    Organization,
    Pin,
    Role,
    UsageHour,
)
from contracts.outbox import organization_mail_sender_set, organization_notices_reader_set
from contracts.pins.selectors import Retirement, effective_retirement, extended_support_ends
from notifications import emails, milestones, webhooks
from notifications.models import (
    LEGAL_MILESTONES,
    MILESTONE_EVENTS,
    CalendarToken,
    Channel,
    Contact,
    DeliveryStatus,
    FeedToken,
    Milestone,
    Notice,
    NoticeStatus,
    Unsubscription,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from notifications.selectors import notice_trail
from notifications.tasks import deliver_webhook, enqueue_batches

MAX_CONTACTS = 50
MAX_ENDPOINTS = 20
TEST_EVENT = "webhook.test"


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------------------------
# Recipients
# --------------------------------------------------------------------------------------------


def role_recipients(*, org_id: int) -> list[str]:
    """E-mail addresses of the organisation's admins and legal members."""
    return sorted(_role_recipients(org_ids={org_id}).get(org_id, set()))


def _role_recipients(*, org_ids: set[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    rows = (
        Membership.objects.filter(
            organization_id__in=org_ids, role__in=[Role.ADMIN, Role.LEGAL], user__is_active=True
        )
        .exclude(user__email="")
        .values_list("organization_id", "user__email")
    )
    for org_id, email in rows:
        found[org_id].add(email.lower())
    return found


def notices_recipients(*, notices: list[Notice]) -> dict[int, list[str]]:
    """Each notice's recipients, in three queries however many notices and organisations: explicit
    recipients, or admins + legal + named contacts; optional notices skip unsubscribed addresses."""
    by_role_of = {n.organization_id for n in notices if not n.recipients}
    optional_of = {n.organization_id for n in notices if not n.legal}
    roles = _role_recipients(org_ids=by_role_of) if by_role_of else {}
    contacts: dict[int, set[str]] = defaultdict(set)
    if by_role_of:
        for org_id, email in Contact.objects.filter(organization_id__in=by_role_of).values_list(
            "organization_id", "email"
        ):
            contacts[org_id].add(email.lower())
    unsubscribed: dict[int, set[str]] = defaultdict(set)
    if optional_of:
        for org_id, email in Unsubscription.objects.filter(organization_id__in=optional_of).values_list(
            "organization_id", "email"
        ):
            unsubscribed[org_id].add(email)
    result = {}
    for notice in notices:
        if notice.recipients:
            chosen = {e.lower() for e in notice.recipients}
        else:
            chosen = roles.get(notice.organization_id, set()) | contacts.get(notice.organization_id, set())
        if not notice.legal:
            chosen = chosen - unsubscribed.get(notice.organization_id, set())
        result[notice.pk] = sorted(chosen)
    return result


def notice_recipients(*, notice: Notice) -> list[str]:
    """Explicit recipients, or admins + legal + named contacts; optional notices skip unsubscribed addresses."""
    return notices_recipients(notices=[notice])[notice.pk]


# --------------------------------------------------------------------------------------------
# Ad-hoc notices (billing, bug reports)
# --------------------------------------------------------------------------------------------


def _clean_addresses(recipients: list[str] | None, field: str = "recipients") -> list[str]:
    cleaned = []
    for address in recipients or []:
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ApplicationError(
                f"{address!r} is not a valid e-mail address.", fields={field: f"invalid address: {address}"}
            ) from exc
        cleaned.append(address.strip().lower())
    return cleaned


def notice_send_adhoc(
    *,
    org: Organization,
    kind: str,
    subject: str,
    body: str,
    recipients: list[str] | None = None,
    dedupe_key: str,
    webhook_event: str = "",
    webhook_data: dict[str, Any] | None = None,
) -> Notice:
    """Queue one e-mail, sent once per (organisation, dedupe_key) however often this is called.

    Recipients default (None) to the organisation's admins, legal members and named contacts; an empty
    list sends to nobody. Ad-hoc notices are optional mail: they carry List-Unsubscribe. With a
    `webhook_event`, the same news also goes, once, to the endpoints subscribed to that event, with
    `webhook_data` as the payload's data.
    """
    if webhook_event:
        _check_events([webhook_event])
        with transaction.atomic():
            hook, made = Notice.objects.get_or_create(
                organization=org,
                dedupe_key=f"adhoc:{dedupe_key}"[:200],
                channel=Channel.WEBHOOK,
                defaults={
                    "milestone": Milestone.ADHOC,
                    "kind": webhook_event,
                    "subject": subject[:300],
                    "body": json.dumps(webhook_data or {}, sort_keys=True),
                    "legal": False,
                    "due_at": timezone.now(),
                },
            )
            if made:
                transaction.on_commit(lambda: _enqueue_send([hook.pk]))
    if not dedupe_key:
        raise ApplicationError("dedupe_key is required.", fields={"dedupe_key": "required"})
    if not subject.strip():
        raise ApplicationError("A subject is required.", fields={"subject": "required"})
    cleaned = _clean_addresses(recipients)
    with transaction.atomic():
        notice, created = Notice.objects.get_or_create(
            organization=org,
            dedupe_key=f"adhoc:{dedupe_key}"[:200],
            channel=Channel.EMAIL,
            defaults={
                "milestone": Milestone.ADHOC,
                "kind": kind[:64],
                "subject": subject[:300],
                "body": body,
                "recipients": cleaned,
                "legal": False,
                "due_at": timezone.now(),
                # An explicit empty list means nobody: recorded, never sent.
                "status": NoticeStatus.SKIPPED
                if recipients is not None and not cleaned
                else NoticeStatus.PENDING,
            },
        )
        if created and notice.status == NoticeStatus.PENDING:
            transaction.on_commit(lambda: _enqueue_send([notice.pk]))
    return notice


def _enqueue_send(ids: list[int]) -> None:
    enqueue_batches(ids)


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


def _org_events() -> dict[int, set[str]]:
    events: dict[int, set[str]] = defaultdict(set)
    for org_id, endpoint_events in WebhookEndpoint.objects.filter(active=True).values_list(
        "organization_id", "events"
    ):
        events[org_id].update(endpoint_events or [])
    return events


def notices_plan(*, at: dt.datetime | None = None) -> int:
    """Insert every notice due at `at` that is not in the outbox yet. Returns how many were new."""
    at = at or timezone.now()
    catch_up = dt.timedelta(days=_setting("NOTICE_CATCH_UP_DAYS", 30))
    org_events = _org_events()
    rows: list[Notice] = []

    def add(
        *, org_id: int, milestone: str, due_at: dt.datetime, snapshot_id=None, migration_id=None, **text: str
    ) -> None:
        common = {
            "organization_id": org_id,
            "snapshot_id": snapshot_id,
            "migration_id": migration_id,
            "milestone": milestone,
            "legal": milestone in LEGAL_MILESTONES,
            "due_at": due_at,
            **text,  # dedupe_key, subject, body: a deferral's notice (below)
        }
        rows.append(Notice(channel=Channel.EMAIL, **common))
        event = MILESTONE_EVENTS.get(milestone)
        if event and event in org_events.get(org_id, ()):
            rows.append(Notice(channel=Channel.WEBHOOK, **common))

    seen: set[tuple[int, int]] = set()
    ends = extended_support_ends(at=at)
    pins = (
        Pin.objects.filter(snapshot__deprecated_at__lte=at)
        .select_related("snapshot", "organization__accepted_terms")
        .only(
            "organization_id",
            "snapshot_id",
            "snapshot__deprecated_at",
            "snapshot__retires_at",
            "organization__accepted_terms__min_notice_days",
        )
    )
    for pin in pins.iterator(chunk_size=2000):
        if (pin.organization_id, pin.snapshot_id) in seen:
            continue
        seen.add((pin.organization_id, pin.snapshot_id))
        terms = pin.organization.accepted_terms
        retirement = effective_retirement(org=pin.organization, snapshot=pin.snapshot, ends=ends)
        dates = milestones.snapshot_milestones(
            deprecated_at=pin.snapshot.deprecated_at,
            retires_at=retirement.effective,
            min_notice_days=terms.min_notice_days if terms else None,
        )
        for m in milestones.due(dates, now=at, catch_up=catch_up):
            add(org_id=pin.organization_id, milestone=m.milestone, due_at=m.at, snapshot_id=pin.snapshot_id)

    cutoff = at - catch_up
    recent = Migration.objects.filter(
        Q(proposed_at__gte=cutoff)
        | Q(applied_at__gte=cutoff)
        | Q(decided_at__gte=cutoff)
        | Q(rolled_back_at__gte=cutoff)
        | Q(state__in=["proposed", "deferred"])
    ).only(
        "organization_id", "proposed_at", "deadline", "state", "applied_at", "decided_at", "rolled_back_at"
    )
    deferred: list[int] = []
    for migration in recent.iterator(chunk_size=2000):
        if migration.state == MigrationState.DEFERRED:
            deferred.append(migration.pk)
        dates = milestones.migration_milestones(
            proposed_at=migration.proposed_at,
            deadline=migration.deadline,
            state=migration.state,
            applied_at=migration.applied_at,
            decided_at=migration.decided_at,
            rolled_back_at=migration.rolled_back_at,
        )
        for m in milestones.due(dates, now=at, catch_up=catch_up):
            add(
                org_id=migration.organization_id,
                milestone=m.milestone,
                due_at=m.at,
                migration_id=migration.pk,
            )

    # Every deferral is told, each once: one notice per ledger record of a deferral (a migration may
    # be deferred again), keyed by the record and naming the end date that deferral set. Only while
    # the migration is still deferred: the sender would find any other notice untrue.
    deferrals = (
        ConsentRecord.objects.filter(
            migration_id__in=deferred, action=LedgerAction.DEFER, created_at__gte=cutoff, created_at__lte=at
        ).values_list(
            "organization_id", "migration_id", "seq", "created_at", "details", "from_snapshot", "to_snapshot"
        )
        if deferred
        else ()
    )
    for org_id, migration_id, seq, decided_at, details, from_name, to_name in deferrals:
        until, limit = (details or {}).get("deferred_until"), (details or {}).get("limit")
        subject, body = emails.deferral_text(
            seq=seq,
            deferred_until=parse_instant(until, field="deferred_until") if until else None,
            limit=parse_instant(limit, field="limit") if limit else None,
            from_name=from_name,
            to_name=to_name,
        )
        add(
            org_id=org_id,
            milestone=milestones.MIGRATION_DEFERRED,
            due_at=decided_at,
            migration_id=migration_id,
            dedupe_key=f"{milestones.MIGRATION_DEFERRED}:{seq}",
            subject=subject,
            body=body,
        )

    # Still in use: an organisation its gateways served a snapshot within the last week, once that
    # snapshot is a week or less from retirement. Planned from usage, not pins: traffic through an
    # alias default counts as much as traffic through a pin.
    window_end = at + dt.timedelta(days=milestones.STILL_IN_USE_DAYS)
    still_used = (
        UsageHour.objects.filter(
            snapshot__retires_at__gt=at,
            snapshot__retires_at__lte=window_end,
            hour__gte=at - dt.timedelta(days=milestones.STILL_IN_USE_LOOKBACK_DAYS),
            requests__gt=0,
        )
        .values_list("organization_id", "snapshot_id", "snapshot__retires_at")
        .distinct()
    )
    for org_id, snapshot_id, retires_at in still_used:
        add(
            org_id=org_id,
            milestone=milestones.STILL_IN_USE,
            due_at=max(milestones.still_in_use_due_at(retires_at=retires_at), at - catch_up),
            snapshot_id=snapshot_id,
        )

    before = Notice.objects.count()
    Notice.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return Notice.objects.count() - before


def notices_due_ids(*, at: dt.datetime | None = None, limit: int = 20000) -> list[int]:
    """Pending notices whose time has come, and claims whose lease ran out (a crashed worker)."""
    at = at or timezone.now()
    return list(
        Notice.objects.filter(due_at__lte=at)
        .filter(Q(status=NoticeStatus.PENDING) | Q(status=NoticeStatus.SENDING, lease_until__lt=at))
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def notices_dispatch_claim(*, at: dt.datetime | None = None, limit: int = 20000) -> list[int]:
    """The due notices to enqueue now: those not queued within NOTICE_REQUEUE_SECONDS, so a backlog
    is not queued again every minute while workers drain it. Marks them queued."""
    at = at or timezone.now()
    requeue_before = at - dt.timedelta(seconds=_setting("NOTICE_REQUEUE_SECONDS", 600))
    with transaction.atomic():
        ids = list(
            Notice.objects.select_for_update(skip_locked=True)
            .filter(due_at__lte=at)
            .filter(Q(status=NoticeStatus.PENDING) | Q(status=NoticeStatus.SENDING, lease_until__lt=at))
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=requeue_before))
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        for start in range(0, len(ids), 500):
            Notice.objects.filter(pk__in=ids[start : start + 500]).update(enqueued_at=at)
    return ids


# --------------------------------------------------------------------------------------------
# Claiming and sending
# --------------------------------------------------------------------------------------------


_CLAIMED_WITH = (
    "organization__accepted_terms",  # notice_truth reads the terms' minimum notice
    "snapshot__replacement",
    "migration__from_snapshot",
    "migration__to_snapshot",
)


def notices_claim(*, notice_ids: list[int], worker: str, at: dt.datetime | None = None) -> list[Notice]:
    """Take, in one transaction, every notice of `notice_ids` that is due and not held by a live
    claim (`FOR UPDATE SKIP LOCKED`, then a lease). A notice another worker holds, or that is sent,
    is left out; a claim whose lease ran out (a crashed worker's) is taken over."""
    at = at or timezone.now()
    lease = dt.timedelta(seconds=_setting("NOTICE_LEASE_SECONDS", 300))
    token = uuid.uuid4().hex
    with transaction.atomic():
        ids = list(
            Notice.objects.select_for_update(skip_locked=True)
            .filter(pk__in=notice_ids, due_at__lte=at)
            .filter(Q(status=NoticeStatus.PENDING) | Q(status=NoticeStatus.SENDING, lease_until__lt=at))
            .values_list("id", flat=True)
        )
        if not ids:
            return []
        Notice.objects.filter(pk__in=ids).update(
            status=NoticeStatus.SENDING,
            claim_token=token,
            claimed_by=worker[:200],
            lease_until=at + lease,
            attempts=F("attempts") + 1,
        )
    return list(
        Notice.objects.filter(pk__in=ids, claim_token=token)
        .select_related(*_CLAIMED_WITH, "escalated_from__snapshot__replacement")
        .select_related("escalated_from__migration__from_snapshot", "escalated_from__migration__to_snapshot")
        .order_by("id")
    )


def notice_claim(*, notice_id: int, worker: str, at: dt.datetime | None = None) -> Notice | None:
    """Take the notice for sending, or None when it is sent, not due, or held by a live claim."""
    claimed = notices_claim(notice_ids=[notice_id], worker=worker, at=at)
    return claimed[0] if claimed else None


@dataclass
class Outcome:
    """What became of one claimed notice: sent or skipped (done), or an error with a retry delay
    (None: failed for good)."""

    notice: Notice
    status: str
    sent_to: list[str] = field(default_factory=list)
    error: str = ""
    retry_in: dt.timedelta | None = None


def _failure(notice: Notice, exc: Exception) -> Outcome:
    if notice.attempts >= _setting("NOTICE_MAX_ATTEMPTS", 8):
        return Outcome(notice, NoticeStatus.FAILED, error=repr(exc))
    retry_in = dt.timedelta(seconds=retry_countdown(attempt=notice.attempts - 1))
    return Outcome(notice, NoticeStatus.PENDING, error=repr(exc), retry_in=retry_in)


def _progress_record(notice: Notice, reached: set[str]) -> None:
    """Who this claim has reached so far, committed at once (autocommit, one short UPDATE) and only
    while the claim still holds the notice; the in-memory notice follows, so the batch's bulk
    record of a failure writes the same list back."""
    notice.sent_to = sorted(reached)
    Notice.objects.filter(pk=notice.pk, claim_token=notice.claim_token, status=NoticeStatus.SENDING).update(
        sent_to=notice.sent_to
    )


def notices_deliver(*, notices: list[Notice]) -> list[Outcome]:
    """Hand claimed notices to their channels: recipients looked up for the whole batch, each
    template rendered once per batch context, every e-mail over one SMTP connection (reopened
    only after a failure), webhook deliveries queued. Recipients already in `sent_to` are skipped
    and every message sent is recorded in `sent_to` at once (#18). A failing notice does not stop
    the others.

    Each notice is first checked against the world at send time (#13, `notice_truth`): one no
    longer true is set aside (obsolete, or pending again at its new date) and not sent; its status
    is no longer SENDING, so `notices_record` leaves it as set aside. A late notice says so."""
    outcomes: list[Outcome] = []
    truths: dict[int, Truth] = {}
    live: list[Notice] = []
    now = timezone.now()
    facts = truth_facts(notices=notices, now=now)
    for notice in notices:
        try:
            truth = notice_truth(notice=notice, now=now, facts=facts)
            if truth.verdict != SEND:
                _notice_set_aside(notice, truth)
                status = NoticeStatus.OBSOLETE if truth.verdict == OBSOLETE else NoticeStatus.PENDING
                outcomes.append(Outcome(notice, status))
                continue
            if truth.late:
                # Written with the outcome, in the batch's one UPDATE (`notices_record`).
                notice.status_reason = f"Sent late: it was due {instant_words(truth.due_at)}."[:300]
        except Exception as exc:
            outcomes.append(_failure(notice, exc))
            continue
        truths[notice.pk] = truth
        live.append(notice)
    notices = live
    emails_ = [n for n in notices if n.channel == Channel.EMAIL]
    recipients = notices_recipients(notices=emails_) if emails_ else {}
    tokens: dict[int, str] = {}
    if emails_:
        for org_id, token in (
            CalendarToken.objects.filter(
                organization_id__in={n.organization_id for n in emails_}, revoked_at__isnull=True
            )
            .order_by("created_at")
            .values_list("organization_id", "token")
        ):
            tokens[org_id] = token  # the newest wins, as CalendarToken's ordering has it
    # Recent use for every notice that reports it, from one query for the batch.
    subjects = {(n.organization_id, emails.usage_subject(n)) for n in emails_}
    subjects = {(org_id, snapshot_id) for org_id, snapshot_id in subjects if snapshot_id is not None}
    usage = (
        usage_hours_many(pairs=subjects, since=min(n.due_at for n in emails_) - dt.timedelta(days=30))
        if subjects
        else {}
    )
    members = emails.members_emails(org_ids={n.organization_id for n in emails_}) if emails_ else {}
    renderer = emails.BatchRenderer(calendar_tokens=tokens, usage=usage, members=members)
    endpoints = _endpoints_by_org({n.organization_id for n in notices if n.channel == Channel.WEBHOOK})
    connection = get_connection(fail_silently=False)
    opened = False
    deliveries: list[int] = []
    try:
        for notice in notices:
            try:
                if notice.channel == Channel.WEBHOOK:
                    urls, created = _webhook_fan_out(
                        notice, endpoints.get(notice.organization_id, []), truths[notice.pk]
                    )
                    deliveries += created
                    outcomes.append(
                        Outcome(notice, NoticeStatus.SENT if urls else NoticeStatus.SKIPPED, urls)
                    )
                    continue
                to = recipients[notice.pk]
                if not to:
                    outcomes.append(Outcome(notice, NoticeStatus.SKIPPED))
                    continue
                # #18's rule inside the batch: recipients an earlier, interrupted attempt reached
                # are not written to again, and each message's recipient is recorded before the
                # next message goes out, so a crash mid-batch costs no duplicate.
                reached = set(notice.sent_to or [])
                pending = [r for r in to if r not in reached]
                if pending:
                    messages = renderer.messages(notice, pending, truth=truths[notice.pk])
                    if not opened:
                        connection.open()
                        opened = True
                    for message in messages:
                        connection.send_messages([message])
                        reached.update(message.to)
                        _progress_record(notice, reached)
                outcomes.append(Outcome(notice, NoticeStatus.SENT, to))
            except Exception as exc:
                outcomes.append(_failure(notice, exc))
                if opened:  # the connection may be broken: start afresh for the next notice
                    with contextlib.suppress(Exception):
                        connection.close()
                    opened = False
    finally:
        if opened:
            with contextlib.suppress(Exception):
                connection.close()
    if deliveries:
        transaction.on_commit(lambda: _enqueue_deliveries(deliveries))
    return outcomes


# --------------------------------------------------------------------------------------------
# Is it still true? (checked when the notice is sent, not only when it was planned)
# --------------------------------------------------------------------------------------------

SEND = "send"
OBSOLETE = "obsolete"
POSTPONE = "postpone"

# The migration states in which each migration notice still describes the truth.
TRUE_IN_STATES = {
    Milestone.MIGRATION_PROPOSED: (MigrationState.PROPOSED, MigrationState.DEFERRED),
    Milestone.DEADLINE_APPROACHING: (MigrationState.PROPOSED, MigrationState.DEFERRED),
    Milestone.MIGRATION_APPLIED: (MigrationState.APPLIED,),
    Milestone.FORCED_MIGRATION_APPLIED: (MigrationState.FORCED,),
    Milestone.MIGRATION_ROLLED_BACK: (MigrationState.ROLLED_BACK,),
    Milestone.MIGRATION_DECLINED: (MigrationState.DECLINED,),
    Milestone.MIGRATION_DEFERRED: (MigrationState.DEFERRED,),
}


@dataclass(frozen=True)
class Truth:
    """What the sender found when it checked the notice against the world at send time."""

    verdict: str  # SEND, OBSOLETE or POSTPONE
    reason: str = ""
    late: bool = False
    due_at: dt.datetime | None = None  # the milestone's date as it stands now
    retirement: Retirement | None = None


@dataclass(frozen=True)
class TruthFacts:
    """What `notice_truth` looks up, fetched once for a whole batch (two queries, whatever its size)."""

    pinned: set[tuple[int, int]]  # (organisation id, snapshot id) of every pin
    ends: dict[tuple[int, int], dt.datetime]  # extended_support_ends for the batch's organisations


def truth_facts(*, notices: list[Notice], now: dt.datetime | None = None) -> TruthFacts:
    now = now or timezone.now()
    pairs = {(n.organization_id, n.snapshot_id) for n in notices if n.snapshot_id is not None}
    org_ids = {org_id for org_id, _ in pairs}
    if not pairs:
        return TruthFacts(pinned=set(), ends={})
    pinned = set(
        Pin.objects.filter(
            organization_id__in=org_ids, snapshot_id__in={snapshot_id for _, snapshot_id in pairs}
        ).values_list("organization_id", "snapshot_id")
    )
    ends: dict[tuple[int, int], dt.datetime] = {}
    for key, until in extended_support_ends(at=now, org_ids=org_ids).items():
        ends[key] = until
    return TruthFacts(pinned=pinned, ends=ends)


def notice_truth(*, notice: Notice, now: dt.datetime | None = None, facts: TruthFacts | None = None) -> Truth:
    """Check, at send time, that what the notice says is still true.

    A migration notice whose migration has moved on (applied then rolled back, decided, expired)
    is obsolete. A snapshot notice is obsolete when the organisation no longer has a pin on the
    snapshot or the deprecation was withdrawn; postponed when the (effective) retirement moved
    later; folded into the later milestone when that one is already reached; and marked late when
    it goes out more than NOTICE_LATE_AFTER_HOURS after its date."""
    now = now or timezone.now()
    late_after = dt.timedelta(hours=_setting("NOTICE_LATE_AFTER_HOURS", 24))
    if notice.milestone in TRUE_IN_STATES and notice.migration is not None:
        migration = notice.migration
        if migration.state not in TRUE_IN_STATES[notice.milestone]:
            return Truth(
                OBSOLETE, f"Migration #{migration.pk} is now {migration.get_state_display().lower()}."
            )
        if (
            notice.milestone == Milestone.DEADLINE_APPROACHING
            and migration.deadline
            and migration.deadline <= now
        ):
            return Truth(OBSOLETE, f"The deadline of migration #{migration.pk} has passed.")
        return Truth(SEND, late=now - notice.due_at > late_after, due_at=notice.due_at)
    snapshot = notice.snapshot
    if (
        snapshot is None
        or notice.migration_id is not None
        or notice.milestone
        in (
            Milestone.ESCALATION,
            Milestone.ADHOC,
        )
    ):
        return Truth(SEND, due_at=notice.due_at)
    org = notice.organization
    if notice.milestone == Milestone.STILL_IN_USE:
        return _still_in_use_truth(notice=notice, now=now, late_after=late_after, facts=facts)
    if facts is not None:
        pinned = (org.pk, snapshot.pk) in facts.pinned
    else:
        pinned = Pin.objects.filter(organization=org, snapshot=snapshot).exists()
    if not pinned:
        return Truth(OBSOLETE, f"No pin of {org.name} is on {snapshot.name} any more.")
    if snapshot.deprecated_at is None:
        return Truth(OBSOLETE, f"The deprecation of {snapshot.name} was withdrawn.")
    retirement = effective_retirement(
        org=org, snapshot=snapshot, at=now, ends=facts.ends if facts is not None else None
    )
    terms = org.accepted_terms
    dates = milestones.snapshot_milestones(
        deprecated_at=snapshot.deprecated_at,
        retires_at=retirement.effective,
        min_notice_days=terms.min_notice_days if terms else None,
    )
    current = next((m for m in dates if m.milestone == notice.milestone), None)
    if current is None:
        return Truth(
            OBSOLETE, f"The retirement date of {snapshot.name} changed: this notice no longer applies."
        )
    if current.at > now:
        return Truth(
            POSTPONE,
            f"The retirement of {snapshot.name} moved to {instant_words(retirement.effective)}: "
            f"rescheduled for {instant_words(current.at)}.",
            due_at=current.at,
            retirement=retirement,
        )
    later = milestones.overtaken_by(notice.milestone, at=current.at, milestones=dates, now=now)
    if later is not None:
        return Truth(
            OBSOLETE,
            f"Overtaken by the later notice ({Milestone(later.milestone).label.lower()}) due "
            f"{instant_words(later.at)}.",
        )
    return Truth(SEND, late=now - current.at > late_after, due_at=current.at, retirement=retirement)


def _still_in_use_truth(
    *, notice: Notice, now: dt.datetime, late_after: dt.timedelta, facts: TruthFacts | None = None
) -> Truth:
    """The "still in use" notice is planned from usage, not pins (traffic through an alias default
    counts), so no pin is required; it stands while the snapshot's effective retirement (extended
    support included) is at most STILL_IN_USE_DAYS away and not yet reached."""
    snapshot = notice.snapshot
    if snapshot.retires_at is None:
        return Truth(OBSOLETE, f"The retirement of {snapshot.name} was withdrawn.")
    retirement = effective_retirement(
        org=notice.organization, snapshot=snapshot, at=now, ends=facts.ends if facts is not None else None
    )
    if retirement.effective <= now:
        return Truth(OBSOLETE, f"{snapshot.name} retired on {instant_words(retirement.effective)}.")
    due_at = milestones.still_in_use_due_at(retires_at=retirement.effective)
    if due_at > now:
        return Truth(
            POSTPONE,
            f"The retirement of {snapshot.name} moved to {instant_words(retirement.effective)}: "
            f"rescheduled for {instant_words(due_at)}.",
            due_at=due_at,
            retirement=retirement,
        )
    return Truth(SEND, late=now - due_at > late_after, due_at=due_at, retirement=retirement)


def _notice_set_aside(notice: Notice, truth: Truth) -> None:
    """Record a notice the sender did not send: obsolete for good, or pending again at its new date."""
    fields: dict[str, Any] = {"status_reason": truth.reason[:300], "lease_until": None}
    if truth.verdict == POSTPONE:
        fields.update(status=NoticeStatus.PENDING, due_at=truth.due_at, enqueued_at=None)
    else:
        fields.update(status=NoticeStatus.OBSOLETE, sent_at=None)
    Notice.objects.filter(pk=notice.pk, claim_token=notice.claim_token, status=NoticeStatus.SENDING).update(
        **fields
    )


def notice_deliver(*, notice: Notice) -> tuple[str, list[str]]:
    """Hand one claimed notice to its channel, after checking it is still true. Returns (final
    status, who/what it went to); a notice set aside (obsolete, postponed) is recorded already."""
    (outcome,) = notices_deliver(notices=[notice])
    if outcome.error:
        raise RuntimeError(outcome.error)
    return outcome.status, outcome.sent_to


def notices_record(*, outcomes: list[Outcome], at: dt.datetime | None = None) -> int:
    """Record every outcome in one transaction (a locking read and one bulk UPDATE), each only if
    the claim that produced it still holds its notice. Returns how many were recorded."""
    if not outcomes:
        return 0
    at = at or timezone.now()
    with transaction.atomic():
        held = set(
            Notice.objects.select_for_update()
            .filter(pk__in=[o.notice.pk for o in outcomes], status=NoticeStatus.SENDING)
            .values_list("pk", "claim_token")
        )
        rows = []
        for outcome in outcomes:
            notice = outcome.notice
            if (notice.pk, notice.claim_token) not in held:
                continue
            notice.status = outcome.status
            notice.lease_until = None
            notice.last_error = outcome.error[:2000]
            if outcome.status in (NoticeStatus.SENT, NoticeStatus.SKIPPED):
                notice.sent_at = at
                notice.sent_to = outcome.sent_to
            elif outcome.retry_in is not None:
                notice.due_at = at + outcome.retry_in
            rows.append(notice)
        _write_outcomes(rows)
    return len(rows)


_OUTCOME_FIELDS = ["status", "lease_until", "last_error", "sent_at", "sent_to", "due_at", "status_reason"]


def _write_outcomes(rows: list[Notice]) -> None:
    """One UPDATE for the whole batch. On PostgreSQL the new values travel as one JSON parameter
    (`jsonb_to_recordset`), which costs a fraction of the CASE expressions bulk_update builds."""
    if not rows:
        return
    if db_connection.vendor != "postgresql":
        Notice.objects.bulk_update(rows, _OUTCOME_FIELDS, batch_size=500)
        return
    values = [
        {
            "id": n.pk,
            "status": n.status,
            "lease_until": None,
            "last_error": n.last_error,
            "sent_at": n.sent_at.isoformat() if n.sent_at else None,
            "sent_to": n.sent_to,
            "due_at": n.due_at.isoformat(),
            "status_reason": n.status_reason,
        }
        for n in rows
    ]
    table = Notice._meta.db_table
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS n SET status = v.status, lease_until = v.lease_until,
                last_error = v.last_error, sent_at = v.sent_at, sent_to = v.sent_to, due_at = v.due_at,
                status_reason = v.status_reason
            FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, status text, lease_until timestamptz,
                last_error text, sent_at timestamptz, sent_to jsonb, due_at timestamptz,
                status_reason text)
            WHERE n.id = v.id
            """,
            [json.dumps(values)],
        )


def notice_mark_done(*, notice: Notice, status: str, sent_to: list[str]) -> bool:
    """Record the outcome, only if this claim still holds the notice."""
    return bool(notices_record(outcomes=[Outcome(notice, status, sent_to)]))


def notice_release(*, notice: Notice, error: str, retry_in: dt.timedelta | None) -> None:
    """Give the claim back after a failed attempt: pending again later, or failed for good."""
    status = NoticeStatus.FAILED if retry_in is None else NoticeStatus.PENDING
    notices_record(outcomes=[Outcome(notice, status, error=error, retry_in=retry_in)])


# --------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------


def _notice_payload(notice: Notice, event: str, truth: Truth | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"organization": notice.organization.slug, "milestone": notice.milestone}
    if truth is not None and notice.milestone != Milestone.ADHOC:
        data["late"] = truth.late
    if notice.milestone == Milestone.ADHOC:
        data.update(json.loads(notice.body or "{}"))
    snapshot = notice.snapshot
    if notice.migration is not None:
        m = notice.migration
        data["migration"] = {
            "id": m.pk,
            "from": m.from_snapshot.name,
            "to": m.to_snapshot.name,
            "state": m.state,
            "deadline": m.deadline.isoformat() if m.deadline else None,
            "applied_at": m.applied_at.isoformat() if m.applied_at else None,
            "deferred_until": m.deferred_until.isoformat() if m.deferred_until else None,
        }
    key = notice.dedupe_key or ""
    if notice.milestone == Milestone.MIGRATION_DEFERRED and key.rpartition(":")[2].isdigit():
        # The deferral this notice tells (one notice per ledger record): its own end date, which a
        # later deferral of the same migration does not change.
        seq = int(key.rpartition(":")[2])
        details = (
            ConsentRecord.objects.filter(organization_id=notice.organization_id, seq=seq)
            .values_list("details", flat=True)
            .first()
        )
        data["deferral"] = {"record": seq, "deferred_until": (details or {}).get("deferred_until")}
    if snapshot is not None:
        data["snapshot"] = {
            "id": snapshot.name,
            "deprecated_at": snapshot.deprecated_at.isoformat() if snapshot.deprecated_at else None,
            "retires_at": snapshot.retires_at.isoformat() if snapshot.retires_at else None,
            "replacement": snapshot.replacement.name if snapshot.replacement else None,
        }
        retirement = truth.retirement if truth is not None else None
        if retirement is not None and retirement.extended:
            data["snapshot"]["extended_support_until"] = retirement.extended_until.isoformat()
    return {"type": event, "timestamp": notice.due_at.isoformat(), "data": data}


def _endpoints_by_org(org_ids: set[int]) -> dict[int, list[WebhookEndpoint]]:
    found: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    if org_ids:
        for endpoint in WebhookEndpoint.objects.filter(organization_id__in=org_ids, active=True).order_by(
            "pk"
        ):
            found[endpoint.organization_id].append(endpoint)
    return found


def _webhook_fan_out(
    notice: Notice, endpoints: list[WebhookEndpoint], truth: Truth | None = None
) -> tuple[list[str], list[int]]:
    """One delivery per subscribed endpoint (created once); returns (their URLs, deliveries to attempt)."""
    event = notice.kind if notice.milestone == Milestone.ADHOC else MILESTONE_EVENTS[notice.milestone]
    subscribed = [e for e in endpoints if event in e.events]
    payload = _notice_payload(notice, event, truth)
    created: list[int] = []
    with transaction.atomic():
        for endpoint in subscribed:
            delivery, made = WebhookDelivery.objects.get_or_create(
                notice=notice,
                endpoint=endpoint,
                defaults={"event_type": event, "msg_id": f"msg_{uuid.uuid4().hex}", "payload": payload},
            )
            if made or delivery.status == DeliveryStatus.PENDING:
                created.append(delivery.pk)
    return [e.url for e in subscribed], created


def _enqueue_deliveries(ids: list[int]) -> None:

    for delivery_id in ids:
        deliver_webhook.delay(delivery_id)


def endpoint_secrets(endpoint: WebhookEndpoint, at: dt.datetime | None = None) -> list[str]:
    at = at or timezone.now()
    in_use = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > at:
        in_use.append(endpoint.previous_secret)
    return in_use


def webhook_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """One attempt of one delivery. The attempt is claimed with a short lease (no transaction stays
    open during the POST, which on SQLite would hold the whole database), so a duplicate task finds
    the claim and does nothing. Returns None if nothing was to do."""
    max_attempts = _setting("WEBHOOK_MAX_ATTEMPTS", 6)
    lease = dt.timedelta(seconds=_setting("WEBHOOK_TIMEOUT_SECONDS", 10) + 60)
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.lease_until = now + lease
        delivery.save(update_fields=["attempts", "last_attempt_at", "lease_until"])
    body = webhooks.payload_json(delivery.payload)
    headers = {
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": webhooks.signature_header(
            secrets_in_use=endpoint_secrets(delivery.endpoint, now),
            msg_id=delivery.msg_id,
            timestamp=now,
            body=body,
        ),
    }
    result = webhooks.post(url=delivery.endpoint.url, body=body, headers=headers)
    outcome: dict[str, Any] = {"response_status": result.status, "lease_until": None}
    if result.refused:
        # Policy, not a network failure: not retried, and nothing about the target is recorded.
        outcome.update(status=DeliveryStatus.REFUSED, response_status=None, last_error=result.error)
    elif result.status is not None and 200 <= result.status < 300:
        outcome.update(status=DeliveryStatus.SUCCEEDED, delivered_at=timezone.now(), last_error="")
    else:
        outcome["last_error"] = (result.error or f"HTTP {result.status}")[:2000]
        if delivery.attempts >= max_attempts:
            outcome["status"] = DeliveryStatus.FAILED
    # Only this attempt's claim may record its outcome.
    WebhookDelivery.objects.filter(
        pk=delivery.pk, attempts=delivery.attempts, status=DeliveryStatus.PENDING
    ).update(**outcome)
    delivery.refresh_from_db()
    return delivery


def _check_events(events: list[str]) -> list[str]:
    valid = set(WebhookEvent.values)
    unknown = [e for e in events if e not in valid]
    if unknown or not events:
        raise ApplicationError(
            f"Unknown or missing events: {', '.join(unknown) or 'none chosen'}. Valid: {', '.join(sorted(valid))}.",
            fields={"events": f"choose from {', '.join(sorted(valid))}"},
        )
    return sorted(set(events))


@transaction.atomic
def webhook_endpoint_create(
    *, org: Organization, url: str, events: list[str], description: str = "", acting_user: Any = None
) -> WebhookEndpoint:
    """Register an endpoint. The returned object's `secret` is the only time it is shown."""
    if len(url) > 500:
        raise ApplicationError(
            "The URL is too long (at most 500 characters).", fields={"url": "at most 500 characters"}
        )
    webhooks.validate_url(url)
    events = _check_events(events)
    if WebhookEndpoint.objects.filter(organization=org, active=True).count() >= MAX_ENDPOINTS:
        raise Conflict(
            f"At most {MAX_ENDPOINTS} webhook endpoints.",
            fields={"url": f"at most {MAX_ENDPOINTS} endpoints"},
        )
    endpoint = WebhookEndpoint.objects.create(
        organization=org,
        url=url,
        events=events,
        description=description[:200],
        secret=webhooks.secret_generate(),
    )
    audit_record(
        org=org,
        action=AuditAction.WEBHOOK_CREATE,
        target_type="webhook",
        target_id=endpoint.pk,
        target_label=url,
        after={"url": url, "events": events, "description": endpoint.description},
        acting_user=acting_user,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, overlap_hours: int = 24, acting_user: Any = None
) -> WebhookEndpoint:
    """New secret; the old one keeps signing alongside for `overlap_hours` so receivers can switch."""
    now = timezone.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = now + dt.timedelta(hours=overlap_hours)
    endpoint.secret = webhooks.secret_generate()
    endpoint.secret_rotated_at = now
    endpoint.save(update_fields=["previous_secret", "previous_secret_until", "secret", "secret_rotated_at"])
    audit_record(
        org=endpoint.organization,
        action=AuditAction.WEBHOOK_ROTATE,
        target_type="webhook",
        target_id=endpoint.pk,
        target_label=endpoint.url,
        after={"previous_secret_until": endpoint.previous_secret_until},
        acting_user=acting_user,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, acting_user: Any = None) -> None:
    endpoint.active = False
    endpoint.save(update_fields=["active"])
    audit_record(
        org=endpoint.organization,
        action=AuditAction.WEBHOOK_DELETE,
        target_type="webhook",
        target_id=endpoint.pk,
        target_label=endpoint.url,
        before={"url": endpoint.url, "events": endpoint.events, "active": True},
        after={"active": False},
        acting_user=acting_user,
    )


def webhook_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    if not endpoint.active:
        raise NotFound("No such webhook endpoint.")
    payload = {
        "type": TEST_EVENT,
        "timestamp": timezone.now().isoformat(),
        "data": {"organization": endpoint.organization.slug, "endpoint": endpoint.pk, "test": True},
    }
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event_type=TEST_EVENT, msg_id=f"msg_{uuid.uuid4().hex}", payload=payload
        )
        transaction.on_commit(lambda: _enqueue_deliveries([delivery.pk]))
    return delivery


# --------------------------------------------------------------------------------------------
# Contacts and unsubscription
# --------------------------------------------------------------------------------------------


def contact_add(*, org: Organization, email: str, name: str = "", acting_user: Any = None) -> Contact:
    (address,) = _clean_addresses([email], field="email")
    if len(name) > 200:
        raise ApplicationError(
            "The name is too long (at most 200 characters).", fields={"name": "at most 200 characters"}
        )
    if Contact.objects.filter(organization=org).count() >= MAX_CONTACTS:
        raise Conflict(
            f"At most {MAX_CONTACTS} named contacts.", fields={"email": f"at most {MAX_CONTACTS} contacts"}
        )
    try:
        with transaction.atomic():
            contact = Contact.objects.create(organization=org, email=address, name=name.strip())
            audit_record(
                org=org,
                action=AuditAction.CONTACT_ADD,
                target_type="contact",
                target_id=contact.pk,
                target_label=address,
                after={"email": address, "name": contact.name},
                acting_user=acting_user,
            )
            return contact
    except IntegrityError as exc:
        raise Conflict(f"{address} is already a contact.", fields={"email": "already a contact"}) from exc


@transaction.atomic
def contact_remove(*, contact: Contact, acting_user: Any = None) -> None:
    audit_record(
        org=contact.organization,
        action=AuditAction.CONTACT_REMOVE,
        target_type="contact",
        target_id=contact.pk,
        target_label=contact.email,
        before={"email": contact.email, "name": contact.name},
        acting_user=acting_user,
    )
    contact.delete()


def unsubscribe_token_check(*, token: str) -> dict[str, Any]:
    try:
        data = signing.loads(
            token,
            salt=emails.UNSUBSCRIBE_SALT,
            max_age=dt.timedelta(days=settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS),
        )
        int(data["o"]), str(data["e"])
    except signing.SignatureExpired as exc:
        raise NotFound("This unsubscribe link has expired: use the link in a newer message.") from exc
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise NotFound("This unsubscribe link is not valid.") from exc
    return data


def unsubscribe(*, token: str) -> Unsubscription:
    """Opt the address out of the organisation's optional notices (legal notices still arrive)."""
    data = unsubscribe_token_check(token=token)
    unsub, _ = Unsubscription.objects.get_or_create(organization_id=data["o"], email=data["e"].lower())
    return unsub


# --------------------------------------------------------------------------------------------
# Acknowledgement and escalation
# --------------------------------------------------------------------------------------------


def ack_token_load(token: str) -> tuple[Notice, str]:
    try:
        data = signing.loads(
            token, salt=emails.ACK_SALT, max_age=dt.timedelta(days=settings.ACK_TOKEN_MAX_AGE_DAYS)
        )
        notice = Notice.objects.select_related("organization").get(pk=data["n"], legal=True)
    except signing.SignatureExpired as exc:
        raise NotFound(
            "This acknowledgement link has expired: acknowledge the notice from the portal instead."
        ) from exc
    except (signing.BadSignature, Notice.DoesNotExist, KeyError, TypeError, ValueError) as exc:
        raise NotFound("This acknowledgement link is not valid.") from exc
    return notice, data["e"]


@transaction.atomic
def notice_acknowledge(*, token: str, user: AbstractBaseUser | None = None) -> Notice:
    """Record who acknowledged the legal notice and when; the first acknowledgement stands."""
    notice, email = ack_token_load(token)
    notice = Notice.objects.select_for_update().get(pk=notice.pk)
    if notice.acknowledged_at is None:
        notice.acknowledged_at = timezone.now()
        notice.acknowledged_by_email = email
        notice.acknowledged_by = user if user is not None and user.is_authenticated else None
        notice.save(update_fields=["acknowledged_at", "acknowledged_by_email", "acknowledged_by"])
    return notice


def notices_escalate(*, at: dt.datetime | None = None) -> int:
    """Escalate each sent legal e-mail left unacknowledged past the terms' escalation days: once,
    to every admin and legal member."""
    at = at or timezone.now()
    candidates = (
        Notice.objects.filter(
            channel=Channel.EMAIL,
            legal=True,
            status=NoticeStatus.SENT,
            acknowledged_at__isnull=True,
            escalated_at__isnull=True,
            escalated_from__isnull=True,
        )
        .exclude(milestone=Milestone.ESCALATION)
        .select_related("organization__accepted_terms")
    )
    count = 0
    for notice in candidates.iterator():
        terms = notice.organization.accepted_terms
        due_at = milestones.escalation_due_at(
            sent_at=notice.sent_at, ack_escalation_days=terms.ack_escalation_days if terms else None
        )
        if due_at > at:
            continue
        with transaction.atomic():
            locked = (
                Notice.objects.select_for_update().filter(pk=notice.pk, escalated_at__isnull=True).first()
            )
            if locked is None:
                continue
            _, created = Notice.objects.get_or_create(
                organization_id=notice.organization_id,
                dedupe_key=f"escalation:{notice.pk}",
                channel=Channel.EMAIL,
                defaults={
                    "milestone": Milestone.ESCALATION,
                    "escalated_from": notice,
                    "legal": True,
                    "recipients": role_recipients(org_id=notice.organization_id),
                    "due_at": at,
                },
            )
            Notice.objects.filter(pk=notice.pk).update(escalated_at=at)
            count += int(created)
    return count


# --------------------------------------------------------------------------------------------
# Calendar tokens
# --------------------------------------------------------------------------------------------


@transaction.atomic
def calendar_token_regenerate(*, org: Organization, acting_user: Any = None) -> CalendarToken:
    """Revoke every current token of the organisation and issue a new one."""
    _calendar_tokens_revoke(org)
    token = CalendarToken.objects.create(organization=org, token=secrets.token_urlsafe(32))
    audit_record(
        org=org,
        action=AuditAction.CALENDAR_REGENERATE,
        target_type="calendar-feed",
        target_id=token.pk,
        target_label="calendar feed link",
        acting_user=acting_user,
    )
    return token


def _calendar_tokens_revoke(org: Organization) -> int:
    return CalendarToken.objects.filter(organization=org, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


@transaction.atomic
def calendar_token_revoke(*, org: Organization, acting_user: Any = None) -> int:
    revoked = _calendar_tokens_revoke(org)
    if revoked:
        audit_record(
            org=org,
            action=AuditAction.CALENDAR_REVOKE,
            target_type="calendar-feed",
            target_label="calendar feed link",
            before={"active_links": revoked},
            after={"active_links": 0},
            acting_user=acting_user,
        )
    return revoked


# --------------------------------------------------------------------------------------------
# Personal feed tokens (Atom feed and calendar)
# --------------------------------------------------------------------------------------------


@transaction.atomic
def feed_token_issue(*, org: Organization, acting_user: AbstractBaseUser) -> FeedToken:
    """A new personal feed token for a member (the previous one stops working)."""
    if not Membership.objects.filter(organization=org, user=acting_user).exists():
        raise NotFound("Not a member of this organisation.")
    feed_token_revoke(org=org, acting_user=acting_user)
    return FeedToken.objects.create(organization=org, user=acting_user, token=secrets.token_urlsafe(32))


@transaction.atomic
def feed_token_revoke(*, org: Organization, acting_user: AbstractBaseUser) -> int:
    return FeedToken.objects.filter(organization=org, user=acting_user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def retry_countdown(*, attempt: int) -> int:
    """Exponential backoff (base · 2^attempt), capped below the broker's visibility timeout."""
    base = _setting("NOTICE_RETRY_BASE_SECONDS", 30)
    cap = _setting("NOTICE_RETRY_MAX_SECONDS", 1800)
    return int(min(base * (2 ** max(attempt, 0)), cap))


def outbox_port_install() -> None:
    """Route contracts' e-mails to organisations through this outbox (contracts.outbox is the port), and let
    contracts read the notice trail (the audit pack) through the same port."""
    organization_mail_sender_set(notice_send_adhoc)
    organization_notices_reader_set(notice_trail)
