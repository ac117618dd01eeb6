"""Writes of terms, migrations and their ledger records.

Every decision on a migration locks the migration row first and the organisation's chain head
second (always in that order), moves the pin through `contracts.services.pin_set`, and appends
exactly one ledger record. A refusal raises before anything is written.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from contracts.catalog.rules import move_target_check
from contracts.consent import selectors
from contracts.errors import ApplicationError, Conflict, Forbidden
from contracts.instants import instant_words
from contracts.ledger.chain import ledger_append
from contracts.models import (
    OPEN_MIGRATION_STATES,
    Alias,
    ConsentRecord,
    ContractTerms,
    ExtendedSupport,
    LedgerAction,
    Migration,
    MigrationOrigin,
    MigrationState,
    Organization,
    Pin,
    Role,
    Snapshot,
    UpgradePolicy,
)
from contracts.pins.services import pin_set
from contracts.tenancy.roles import Permission, role_may

logger = logging.getLogger(__name__)

SYSTEM = "system"
# Pins of these policies never move on their own: they are offered a migration instead.
PROPOSING_POLICIES = (UpgradePolicy.MANUAL, UpgradePolicy.ON_RETIREMENT)
UNDECIDED_STATES = (MigrationState.PROPOSED, MigrationState.DEFERRED)


@dataclass(frozen=True)
class Decider:
    """Who decides, as the ledger records it: the user (None for keys and the system) and context."""

    user: AbstractBaseUser | None = None
    email: str | None = None
    ip: str | None = None
    user_agent: str = ""
    role: str | None = Role.ADMIN

    @property
    def actor_email(self) -> str:
        if self.email:
            return self.email
        if self.user is not None:
            return getattr(self.user, "email", "") or self.user.get_username()
        return SYSTEM


SYSTEM_DECIDER = Decider(email=SYSTEM, role=None)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _words(value: dt.datetime | None) -> str:
    return instant_words(value)


def _require_decider(decider: Decider) -> None:
    if not role_may(decider.role, Permission.DECIDE_MIGRATIONS):
        raise Forbidden(
            f"Only an organisation admin may decide migrations; you are {decider.role or 'not a member'}.",
            fields={"role": decider.role or ""},
        )


# --------------------------------------------------------------------------------------------
# Terms
# --------------------------------------------------------------------------------------------


@transaction.atomic
def terms_create(
    *,
    version: str,
    title: str,
    body: str,
    effective_at: dt.datetime,
    tier: str = "standard",
    min_notice_days: int = 90,
    max_deferral_days: int = 60,
    rollback_window_hours: int = 72,
    retention_days: int = 365,
    ack_escalation_days: int = 7,
    retired_bug_policy: str,
) -> ContractTerms:
    """Publish a terms version. body_sha256 is computed here and the row is never edited again.

    Organisations of the tier that have not accepted it see it offered.
    """
    version = (version or "").strip()
    if not version or len(version) > 32:
        raise ApplicationError(
            "A terms version needs 1 to 32 characters.", fields={"version": "1 to 32 characters."}
        )
    if not (body or "").strip():
        raise ApplicationError("Terms need a body.", fields={"body": "Required."})
    if ContractTerms.objects.filter(version=version).exists():
        raise Conflict(f"Terms version {version!r} already exists.", fields={"version": "Already taken."})
    terms = ContractTerms.objects.create(
        version=version,
        title=title,
        tier=tier,
        body=body,
        body_sha256=ContractTerms.hash_body(body),
        effective_at=effective_at,
        min_notice_days=min_notice_days,
        max_deferral_days=max_deferral_days,
        rollback_window_hours=rollback_window_hours,
        retention_days=retention_days,
        ack_escalation_days=ack_escalation_days,
        retired_bug_policy=retired_bug_policy,
    )
    Organization.objects.filter(tier=tier).exclude(accepted_terms=terms).update(offered_terms=terms)
    return terms


@transaction.atomic
def terms_accept(
    *,
    org: Organization,
    terms: ContractTerms,
    decider: Decider,
    confirmed: bool,
    at: dt.datetime | None = None,
) -> ConsentRecord:
    """An admin accepts a terms version: one `accept-terms` ledger record, then locked.accepted_terms."""
    at = at or timezone.now()
    _require_decider(decider)
    if not confirmed:
        raise ApplicationError(
            "Tick the box to confirm you have read and accept these terms.",
            fields={"confirm": "Required: confirm you accept this exact version."},
        )
    locked = Organization.objects.select_for_update().get(pk=org.pk)
    terms = ContractTerms.objects.get(pk=terms.pk)
    if terms.tier != locked.tier:
        raise ApplicationError(
            f"Terms {terms.version} are for the {terms.tier} tier; {locked.name} is on {locked.tier}.",
            fields={"terms": f"Must be terms of the {locked.tier} tier."},
        )
    if terms.effective_at > at:
        raise ApplicationError(
            f"Terms {terms.version} take effect on {_words(terms.effective_at)}; they cannot be accepted yet.",
            fields={"terms": f"Not effective before {_words(terms.effective_at)}."},
        )
    if terms.body_sha256 != ContractTerms.hash_body(terms.body):
        raise Conflict(
            f"Terms {terms.version} do not match their recorded sha256; refusing to record an acceptance.",
            fields={"terms": "Body hash mismatch."},
        )
    if locked.accepted_terms_id == terms.pk:
        raise Conflict(
            f"{locked.name} has already accepted terms {terms.version}.",
            fields={"terms": "Already accepted."},
        )
    previous = locked.accepted_terms.version if locked.accepted_terms_id else ""
    record = ledger_append(
        org=locked,
        action=LedgerAction.ACCEPT_TERMS,
        acting_user=decider.user,
        actor_email=decider.actor_email,
        terms_version=terms.version,
        terms_sha256=terms.body_sha256,
        details={"previous_terms_version": previous, "tier": terms.tier},
        ip=decider.ip,
        user_agent=decider.user_agent,
        at=at,
    )
    locked.accepted_terms = terms
    locked.accepted_terms_at = at
    update = ["accepted_terms", "accepted_terms_at"]
    if locked.offered_terms_id == terms.pk:
        locked.offered_terms = None
        update.append("offered_terms")
    locked.save(update_fields=update)
    return record


# --------------------------------------------------------------------------------------------
# Proposing migrations
# --------------------------------------------------------------------------------------------


def migration_deadline(*, from_snapshot: Snapshot) -> dt.datetime | None:
    """The retirement date of the snapshot being left: undecided migrations are forced then.

    A snapshot without a retirement date keeps serving, so its migrations have no deadline until
    one is set (snapshot_lifecycle_set fills it in, and the contract guard keeps it at least the
    accepted terms' min_notice_days away).
    """
    return from_snapshot.retires_at


def deferral_limit(*, migration: Migration, terms: ContractTerms) -> dt.datetime:
    """The latest instant a migration may be deferred to: max_deferral_days after its proposal,
    and never past its deadline."""
    limit = migration.proposed_at + dt.timedelta(days=terms.max_deferral_days)
    if migration.deadline and migration.deadline < limit:
        limit = migration.deadline
    return limit


def rollback_window_end(*, migration: Migration, terms: ContractTerms) -> dt.datetime | None:
    if migration.applied_at is None:
        return None
    return migration.applied_at + dt.timedelta(hours=terms.rollback_window_hours)


@transaction.atomic
def migration_propose(
    *,
    pin: Pin,
    to_snapshot: Snapshot,
    origin: str = MigrationOrigin.STAFF,
    note: str = "",
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
    supersede: bool = False,
) -> Migration:
    """Offer one pin a move. One open migration per pin: with `supersede` an undecided one to a
    different target is cancelled first; otherwise an existing open migration is a conflict."""
    at = at or timezone.now()
    pin = Pin.objects.select_for_update().get(pk=pin.pk)
    org = Organization.objects.get(pk=pin.organization_id)
    from_snapshot = Snapshot.objects.get(pk=pin.snapshot_id)
    if to_snapshot.pk == from_snapshot.pk:
        raise Conflict(
            f"The pin is already on {to_snapshot.name}.",
            fields={"to_snapshot": "Same as the pinned snapshot."},
        )
    move_target_check(
        snapshot=to_snapshot, family=from_snapshot.family_id, at=at, field="to_snapshot", org=org
    )
    existing = Migration.objects.select_for_update().filter(pin=pin, state__in=OPEN_MIGRATION_STATES).first()
    if existing is not None:
        if existing.to_snapshot_id == to_snapshot.pk:
            return existing
        if not supersede or existing.state not in UNDECIDED_STATES:
            raise Conflict(
                f"Migration #{existing.pk} to {existing.to_snapshot.name} is still open for this pin.",
                fields={"pin": "Has an open migration."},
            )
        existing.state = MigrationState.CANCELLED
        existing.decided_at = at
        existing.note = (existing.note + f"\nSuperseded by a proposal to {to_snapshot.name}.").strip()
        existing.save(update_fields=["state", "decided_at", "note"])
    migration = Migration.objects.create(
        organization=org,
        pin=pin,
        from_snapshot=from_snapshot,
        to_snapshot=to_snapshot,
        origin=origin,
        note=note,
        proposed_at=at,
        deadline=migration_deadline(from_snapshot=from_snapshot),
    )
    logger.info("migration %s proposed (%s) by %s", migration.pk, origin, acting_user or SYSTEM)
    return migration


@transaction.atomic
def migration_request(
    *,
    org: Organization,
    pin: Pin,
    to_snapshot: Snapshot,
    decider: Decider,
    at: dt.datetime | None = None,
) -> Migration:
    """The way forward the customer asks for itself (after a rollback or a decline, or any time a
    pin sits on a deprecated snapshot): a proposal to the best successor or to any snapshot of the
    family that serves. It is then consented to like any other migration, through the ledger under
    the terms in force; asking writes no ledger record by itself."""
    at = at or timezone.now()
    _require_decider(decider)
    if pin.organization_id != org.pk:
        raise Forbidden("This pin belongs to another organisation.", fields={"pin": "Not yours."})
    open_one = Migration.objects.filter(pin=pin, state__in=OPEN_MIGRATION_STATES).first()
    if open_one is not None:
        raise Conflict(
            f"Migration #{open_one.pk} to {open_one.to_snapshot.name} is still open for this pin: decide it first.",
            fields={"to_snapshot": f"Migration #{open_one.pk} is still open."},
        )
    return migration_propose(
        pin=pin,
        to_snapshot=to_snapshot,
        origin=MigrationOrigin.CUSTOMER,
        note=f"Requested by {decider.actor_email}.",
        acting_user=decider.user,
        at=at,
    )


def migrations_propose_for_alias_move(
    *,
    alias: Alias,
    to_snapshot: Snapshot,
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> list[Migration]:
    """After an alias moved: offer the new default to every manual / on-retirement pin not on it."""
    at = at or timezone.now()
    proposed = []
    pins = Pin.objects.filter(alias=alias, policy__in=PROPOSING_POLICIES).exclude(snapshot=to_snapshot)
    for pin in pins:
        proposed.append(
            migration_propose(
                pin=pin,
                to_snapshot=to_snapshot,
                origin=MigrationOrigin.ALIAS_MOVE,
                note=f"{alias.name} now points at {to_snapshot.name}.",
                acting_user=acting_user,
                at=at,
                supersede=True,
            )
        )
    return proposed


def migrations_propose_for_deprecation(
    *, snapshot: Snapshot, acting_user: AbstractBaseUser | None = None, at: dt.datetime | None = None
) -> list[Migration]:
    """After a snapshot is deprecated: pins on it get a migration to its replacement, and open
    migrations away from it take its retirement date as their deadline."""
    at = at or timezone.now()
    proposed = []
    if snapshot.retires_at:
        Migration.objects.filter(from_snapshot=snapshot, state__in=OPEN_MIGRATION_STATES).filter(
            Q(deadline__isnull=True) | Q(deadline__gt=snapshot.retires_at)
        ).update(deadline=snapshot.retires_at)
    if snapshot.replacement_id is None:
        return proposed
    replacement = Snapshot.objects.get(pk=snapshot.replacement_id)
    pins = Pin.objects.filter(snapshot=snapshot, policy__in=PROPOSING_POLICIES)
    for pin in pins:
        if Migration.objects.filter(pin=pin, state__in=OPEN_MIGRATION_STATES).exists():
            continue
        proposed.append(
            migration_propose(
                pin=pin,
                to_snapshot=replacement,
                origin=MigrationOrigin.DEPRECATION,
                note=f"{snapshot.name} is deprecated; {replacement.name} replaces it.",
                acting_user=acting_user,
                at=at,
            )
        )
    return proposed


# --------------------------------------------------------------------------------------------
# Deciding
# --------------------------------------------------------------------------------------------


def _lock_open(migration: Migration, *, at: dt.datetime, allowed: tuple[str, ...]) -> Migration:
    """Lock the migration row and refuse (409) unless it is in `allowed` and before its deadline."""
    locked = Migration.objects.select_for_update().filter(pk=migration.pk).first()
    if locked is None:
        raise Conflict("This migration no longer exists.")
    if locked.state not in allowed:
        raise Conflict(
            f"Migration #{locked.pk} is already {locked.get_state_display().lower()}.",
            fields={"state": locked.state},
        )
    if locked.deadline and at >= locked.deadline:
        raise Conflict(
            f"Migration #{locked.pk} expired on {_words(locked.deadline)}.",
            fields={"deadline": f"Passed on {_words(locked.deadline)}."},
        )
    return locked


def _check_terms_shown(terms: ContractTerms, expected_terms_sha256: str | None) -> None:
    if expected_terms_sha256 and expected_terms_sha256 != terms.body_sha256:
        raise Conflict(
            f"The terms in force changed to {terms.version} since the confirmation was shown; review again.",
            fields={"terms_sha256": terms.body_sha256},
        )


def _record(
    *,
    migration: Migration,
    action: str,
    decider: Decider,
    terms: ContractTerms,
    at: dt.datetime,
    details: dict | None = None,
    reverse: bool = False,
) -> ConsentRecord:
    from_snapshot, to_snapshot = migration.from_snapshot, migration.to_snapshot
    if reverse:
        from_snapshot, to_snapshot = to_snapshot, from_snapshot
    return ledger_append(
        org=migration.organization,
        action=action,
        acting_user=decider.user,
        actor_email=decider.actor_email,
        migration=migration,
        from_snapshot=from_snapshot.name,
        to_snapshot=to_snapshot.name,
        terms_version=terms.version,
        terms_sha256=terms.body_sha256,
        diff_sha256=selectors.diff_sha256(
            org=migration.organization,
            from_snapshot=migration.from_snapshot,
            to_snapshot=migration.to_snapshot,
        ),
        details=details or {},
        ip=decider.ip,
        user_agent=decider.user_agent,
        at=at,
    )


def _move_pin(*, migration: Migration, to: Snapshot, decider: Decider, reason: str, at: dt.datetime) -> None:

    pin = Pin.objects.select_related("alias", "organization").get(pk=migration.pin_id)
    pin_set(
        org=pin.organization,
        alias=pin.alias,
        snapshot=to,
        acting_user=decider.user,
        reason=f"migration #{migration.pk}: {reason}",
        at=at,
    )


def _apply(*, migration: Migration, decider: Decider, at: dt.datetime, reason: str) -> None:
    _move_pin(migration=migration, to=migration.to_snapshot, decider=decider, reason=reason, at=at)
    migration.state = MigrationState.APPLIED
    migration.applied_at = at


@transaction.atomic
def migration_consent(
    *,
    migration: Migration,
    decider: Decider,
    scheduled_for: dt.datetime | None = None,
    expected_terms_sha256: str | None = None,
    shown_sha256: str | None = None,
    at: dt.datetime | None = None,
) -> ConsentRecord:
    """Consent now (the pin moves at once) or for a date before the deadline (the beat applies it).

    Given on the portal's confirmation, `shown_sha256` is the sha256 of what that screen showed
    (selectors.consent_facts: diff summary, baseline verdict, rollback window): the consent is
    refused when it no longer matches, and the record carries those facts under details["shown"].
    """
    at = at or timezone.now()
    _require_decider(decider)
    migration = _lock_open(migration, at=at, allowed=UNDECIDED_STATES)
    terms = selectors.terms_in_force(org=migration.organization, at=at)
    _check_terms_shown(terms, expected_terms_sha256)
    shown = None
    if shown_sha256:
        shown = selectors.consent_facts(org=migration.organization, migration=migration, terms=terms)
        if selectors.consent_facts_sha256(shown) != shown_sha256:
            raise Conflict(
                "The diff, the baseline verdict or the rollback window changed since the confirmation "
                "was shown; review it again.",
                fields={"shown_sha256": "Out of date."},
            )
    if scheduled_for is not None and scheduled_for <= at:
        scheduled_for = None
    if scheduled_for is not None and migration.deadline and scheduled_for >= migration.deadline:
        raise ApplicationError(
            f"A consent can be scheduled up to the deadline, {_words(migration.deadline)}.",
            fields={"at": f"Must be before {_words(migration.deadline)} (the migration's deadline)."},
        )
    migration.decided_at = at
    migration.decided_by = decider.user if getattr(decider.user, "pk", None) else None
    if scheduled_for is None:
        _apply(migration=migration, decider=decider, at=at, reason="consented")
        details = {"applied_at": _iso(at)}
    else:
        migration.state = MigrationState.CONSENTED
        migration.scheduled_for = scheduled_for
        details = {"scheduled_for": _iso(scheduled_for)}
    if shown is not None:
        details["shown"] = shown
    migration.save(update_fields=["state", "decided_at", "decided_by", "applied_at", "scheduled_for"])
    return _record(
        migration=migration,
        action=LedgerAction.CONSENT,
        decider=decider,
        terms=terms,
        at=at,
        details=details,
    )


@transaction.atomic
def migration_defer(
    *,
    migration: Migration,
    decider: Decider,
    until: dt.datetime,
    expected_terms_sha256: str | None = None,
    at: dt.datetime | None = None,
) -> ConsentRecord:
    """Defer to a later date, at most max_deferral_days after the proposal and before the deadline."""
    at = at or timezone.now()
    _require_decider(decider)
    migration = _lock_open(migration, at=at, allowed=UNDECIDED_STATES)
    terms = selectors.terms_in_force(org=migration.organization, at=at)
    _check_terms_shown(terms, expected_terms_sha256)
    limit = deferral_limit(migration=migration, terms=terms)
    if until <= at:
        raise ApplicationError("A deferral must end in the future.", fields={"until": "Must be after now."})
    if until > limit:
        which = (
            "the migration's deadline"
            if migration.deadline and limit == migration.deadline
            else f"your terms {terms.version or '(defaults)'} allow {terms.max_deferral_days} days after the proposal"
        )
        raise ApplicationError(
            f"A deferral past {_words(limit)} is not allowed ({which}).",
            fields={"until": f"Latest allowed: {_words(limit)} ({which})."},
        )
    migration.state = MigrationState.DEFERRED
    migration.deferred_until = until
    migration.decided_at = at
    migration.decided_by = decider.user if getattr(decider.user, "pk", None) else None
    migration.save(update_fields=["state", "deferred_until", "decided_at", "decided_by"])
    return _record(
        migration=migration,
        action=LedgerAction.DEFER,
        decider=decider,
        terms=terms,
        at=at,
        details={"deferred_until": _iso(until), "limit": _iso(limit)},
    )


@transaction.atomic
def migration_decline(
    *,
    migration: Migration,
    decider: Decider,
    expected_terms_sha256: str | None = None,
    at: dt.datetime | None = None,
) -> ConsentRecord:
    """Decline: the pin stays where it is and this proposal closes."""
    at = at or timezone.now()
    _require_decider(decider)
    migration = _lock_open(migration, at=at, allowed=UNDECIDED_STATES)
    terms = selectors.terms_in_force(org=migration.organization, at=at)
    _check_terms_shown(terms, expected_terms_sha256)
    migration.state = MigrationState.DECLINED
    migration.decided_at = at
    migration.decided_by = decider.user if getattr(decider.user, "pk", None) else None
    migration.save(update_fields=["state", "decided_at", "decided_by"])
    return _record(migration=migration, action=LedgerAction.DECLINE, decider=decider, terms=terms, at=at)


@transaction.atomic
def migration_rollback(
    *,
    migration: Migration,
    decider: Decider,
    expected_terms_sha256: str | None = None,
    at: dt.datetime | None = None,
) -> ConsentRecord:
    """Move the pin back to the snapshot it left, within rollback_window_hours of the move."""
    at = at or timezone.now()
    _require_decider(decider)
    locked = Migration.objects.select_for_update().filter(pk=migration.pk).first()
    if locked is None or locked.state != MigrationState.APPLIED:
        state = locked.get_state_display().lower() if locked else "gone"
        raise Conflict(
            f"Only an applied migration can be rolled back; this one is {state}.",
            fields={"state": locked.state if locked else ""},
        )
    migration = locked
    terms = selectors.terms_in_force(org=migration.organization, at=at)
    _check_terms_shown(terms, expected_terms_sha256)
    window_end = rollback_window_end(migration=migration, terms=terms)
    if window_end is None or at > window_end:
        raise Conflict(
            f"The rollback window closed on {_words(window_end)} "
            f"({terms.rollback_window_hours} hours after the move).",
            fields={"window_end": f"Closed on {_words(window_end)}."},
        )
    from_snapshot = migration.from_snapshot
    if from_snapshot.retires_at and from_snapshot.retires_at <= at:
        raise Conflict(
            f"{from_snapshot.name} retired on {_words(from_snapshot.retires_at)}; there is nothing to roll back to.",
            fields={"from_snapshot": "Retired."},
        )
    _move_pin(migration=migration, to=from_snapshot, decider=decider, reason="rolled back", at=at)
    migration.state = MigrationState.ROLLED_BACK
    migration.rolled_back_at = at
    migration.save(update_fields=["state", "rolled_back_at"])
    return _record(
        migration=migration,
        action=LedgerAction.ROLLBACK,
        decider=decider,
        terms=terms,
        at=at,
        details={"window_end": _iso(window_end)},
        reverse=True,
    )


# --------------------------------------------------------------------------------------------
# System actions (the beat)
# --------------------------------------------------------------------------------------------


@transaction.atomic
def migration_apply_scheduled(*, migration: Migration, at: dt.datetime | None = None) -> ConsentRecord | None:
    """Apply a consent whose scheduled date has come (system action). None when nothing is due."""
    at = at or timezone.now()
    locked = Migration.objects.select_for_update().filter(pk=migration.pk).first()
    if (
        locked is None
        or locked.state != MigrationState.CONSENTED
        or (locked.scheduled_for and locked.scheduled_for > at)
    ):
        return None
    terms = selectors.terms_in_force(org=locked.organization, at=at)
    _apply(migration=locked, decider=SYSTEM_DECIDER, at=at, reason="scheduled consent applied")
    locked.save(update_fields=["state", "applied_at"])
    return _record(
        migration=locked,
        action=LedgerAction.APPLY,
        decider=SYSTEM_DECIDER,
        terms=terms,
        at=at,
        details={"scheduled_for": _iso(locked.scheduled_for)},
    )


def has_extended_support(*, org_id: int, snapshot_id: int, at: dt.datetime) -> bool:
    return ExtendedSupport.objects.filter(
        organization_id=org_id, snapshot_id=snapshot_id, cancelled_at__isnull=True, until__gt=at
    ).exists()


@transaction.atomic
def migration_force(*, migration: Migration, at: dt.datetime | None = None) -> ConsentRecord | None:
    """At retirement, move an undecided pin to the proposed snapshot (system action) and tell the
    organisation's admins. None when not due, or when the organisation bought extended support."""
    at = at or timezone.now()
    locked = Migration.objects.select_for_update().filter(pk=migration.pk).first()
    if (
        locked is None
        or locked.state not in UNDECIDED_STATES
        or locked.deadline is None
        or locked.deadline > at
    ):
        return None
    if has_extended_support(org_id=locked.organization_id, snapshot_id=locked.from_snapshot_id, at=at):
        return None
    terms = selectors.terms_in_force(org=locked.organization, at=at)
    _move_pin(
        migration=locked,
        to=locked.to_snapshot,
        decider=SYSTEM_DECIDER,
        reason="forced at retirement",
        at=at,
    )
    previous_state = locked.state
    locked.state = MigrationState.FORCED
    locked.applied_at = at
    locked.decided_at = at
    locked.save(update_fields=["state", "applied_at", "decided_at"])
    record = _record(
        migration=locked,
        action=LedgerAction.FORCED,
        decider=SYSTEM_DECIDER,
        terms=terms,
        at=at,
        details={"deadline": _iso(locked.deadline), "previous_state": previous_state},
    )
    # The organisation is told by the notification outbox: its planner turns a forced migration into
    # the "forced-migration-applied" notice (e-mail and webhook), sent exactly once.
    return record


def migrations_apply_due(*, at: dt.datetime | None = None) -> list[int]:
    """Apply every scheduled consent that is due; returns the migration ids applied."""
    at = at or timezone.now()
    applied = []
    due = Migration.objects.filter(state=MigrationState.CONSENTED, scheduled_for__lte=at).values_list(
        "pk", flat=True
    )
    for migration_id in list(due):
        if migration_apply_scheduled(migration=Migration(pk=migration_id), at=at) is not None:
            applied.append(migration_id)
    return applied


def migrations_force_due(*, at: dt.datetime | None = None) -> list[int]:
    """Force every undecided migration whose snapshot has retired; returns the migration ids forced."""
    at = at or timezone.now()
    forced = []
    due = Migration.objects.filter(
        state__in=UNDECIDED_STATES, deadline__lte=at, from_snapshot__retires_at__lte=at
    ).values_list("pk", flat=True)
    for migration_id in list(due):
        if migration_force(migration=Migration(pk=migration_id), at=at) is not None:
            forced.append(migration_id)
    return forced
