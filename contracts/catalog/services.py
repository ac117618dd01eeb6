"""Writes of the catalog: snapshots, their publication and lifecycle dates, aliases and their moves."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from contracts.catalog.rules import move_target_check
from contracts.consent.selectors import terms_in_force
from contracts.consent.services import migrations_propose_for_alias_move, migrations_propose_for_deprecation
from contracts.errors import ApplicationError, Conflict
from contracts.gateway.changelog import pin_map_record
from contracts.instants import instant_words
from contracts.models import (
    OPEN_MIGRATION_STATES,
    Alias,
    AliasMove,
    LedgerAction,
    Migration,
    ModelFamily,
    Organization,
    Pin,
    PinMapChangeKind,
    Snapshot,
    UpgradePolicy,
)
from contracts.pins.cache import resolve_cache_invalidate_all
from contracts.pins.services import pin_set

IMMUTABLE_SNAPSHOT_FIELDS = ("digest", "config")
# Fields of a snapshot that its pin-map entry carries: changing one of them is a pin-map change.
PIN_MAP_SNAPSHOT_FIELDS = frozenset(
    {
        "family",
        "digest",
        "released_at",
        "deprecated_at",
        "retires_at",
        "retention_until",
        "replacement",
        "deprecation_notice_url",
    }
)


DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


def _validate_digest(digest: str) -> None:
    if not DIGEST_RE.match(digest or ""):
        raise ApplicationError(
            "digest must be a sha256 in lowercase hex (64 characters).",
            fields={"digest": "Expected 64 lowercase hexadecimal characters."},
        )


@transaction.atomic
def snapshot_create(
    *,
    family: ModelFamily,
    name: str,
    digest: str,
    config: dict[str, Any] | None = None,
    released_at: dt.datetime,
    publish: bool = False,
    **extra: Any,
) -> Snapshot:
    _validate_digest(digest)
    if Snapshot.objects.filter(name=name).exists():
        raise Conflict(f"A snapshot named {name!r} already exists.", fields={"name": "Already taken."})
    snapshot = Snapshot(family=family, name=name, digest=digest, config=config or {}, released_at=released_at)
    for field, value in extra.items():
        setattr(snapshot, field, value)
    snapshot.full_clean()
    snapshot.save()
    if publish:
        snapshot_publish(snapshot=snapshot)
    return snapshot


@transaction.atomic
def snapshot_publish(*, snapshot: Snapshot, at: dt.datetime | None = None) -> Snapshot:
    """Publish a draft: from now on its digest and config are frozen."""
    snapshot = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
    if snapshot.published_at is not None:
        return snapshot
    _validate_digest(snapshot.digest)
    snapshot.published_at = at or timezone.now()
    snapshot.save(update_fields=["published_at"])
    pin_map_record(kind=PinMapChangeKind.SNAPSHOT, cause="snapshot-published", snapshot=snapshot.name)
    resolve_cache_invalidate_all()
    return snapshot


@transaction.atomic
def snapshot_update(*, snapshot: Snapshot, data: dict[str, Any]) -> Snapshot:
    """Change a snapshot's mutable fields; digest and config are refused once it is published."""
    current = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
    if current.published_at is not None:
        frozen = {
            field: "Frozen once the snapshot is published."
            for field in IMMUTABLE_SNAPSHOT_FIELDS
            if field in data and data[field] != getattr(current, field)
        }
        if frozen:
            raise Conflict(
                f"{current.name} is published: its {' and '.join(frozen)} cannot change.", fields=frozen
            )
    if "digest" in data:
        _validate_digest(data["digest"])
    for field, value in data.items():
        setattr(current, field, value)
    current.full_clean()
    current.save(update_fields=list(data))
    if current.published_at is not None and PIN_MAP_SNAPSHOT_FIELDS.intersection(data):
        pin_map_record(kind=PinMapChangeKind.SNAPSHOT, cause="snapshot-lifecycle", snapshot=current.name)
    resolve_cache_invalidate_all()
    return current


@transaction.atomic
def alias_create(
    *,
    name: str,
    family: ModelFamily,
    target: Snapshot,
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
    description: str = "",
) -> Alias:
    at = at or timezone.now()
    if target.family_id != family.pk:
        raise ApplicationError(
            f"{target.name} is not a snapshot of the {family.slug} family.",
            fields={"target": "Wrong family."},
        )
    alias = Alias.objects.create(
        name=name, family=family, target=target, created_at=at, description=description
    )
    AliasMove.objects.create(
        alias=alias, from_snapshot=None, to_snapshot=target, moved_at=at, reason="created", actor=acting_user
    )
    pin_map_record(kind=PinMapChangeKind.ALIAS, cause="alias-created", alias=alias.name)
    resolve_cache_invalidate_all()
    return alias


@transaction.atomic
def alias_move(
    *,
    alias: Alias,
    to_snapshot: Snapshot,
    reason: str,
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> AliasMove:
    """Move an alias's default. `follow` pins move with it; the others are offered a migration."""
    at = at or timezone.now()
    alias = Alias.objects.select_for_update().select_related("family").get(pk=alias.pk)
    move_target_check(snapshot=to_snapshot, family=alias.family, at=at, field="to_snapshot")
    if to_snapshot.pk == alias.target_id:
        raise Conflict(
            f"{alias.name} already points at {to_snapshot.name}.", fields={"to_snapshot": "Unchanged."}
        )
    move = AliasMove.objects.create(
        alias=alias,
        from_snapshot=alias.target,
        to_snapshot=to_snapshot,
        moved_at=at,
        reason=reason,
        actor=acting_user,
    )
    alias.target = to_snapshot
    alias.save(update_fields=["target"])
    for pin in Pin.objects.select_for_update().filter(alias=alias).select_related("organization"):
        if pin.policy == UpgradePolicy.FOLLOW and pin.snapshot_id != to_snapshot.pk:
            pin_set(
                org=pin.organization,
                alias=alias,
                snapshot=to_snapshot,
                acting_user=acting_user,
                reason=f"alias {alias.name} moved: {reason}",
                at=at,
                ledger_action=LedgerAction.FOLLOW,
            )

    migrations_propose_for_alias_move(alias=alias, to_snapshot=to_snapshot, acting_user=acting_user, at=at)
    pin_map_record(kind=PinMapChangeKind.ALIAS, cause="alias-moved", alias=alias.name)
    resolve_cache_invalidate_all()
    return move


def snapshot_lifecycle_check(
    *,
    snapshot: Snapshot,
    retires_at: dt.datetime | None,
    replacement: Snapshot | None = None,
    at: dt.datetime | None = None,
) -> None:
    """The CONTRACT GUARD alone (writes nothing), so the staff console can show a refusal on the
    form before saving: an earlier (or first) retirement date must leave every organisation pinned
    to the snapshot at least the notice of its accepted terms; a replacement must be a snapshot of
    the same family that serves."""

    at = at or timezone.now()
    if replacement is not None and replacement.pk != snapshot.replacement_id:
        move_target_check(snapshot=replacement, family=snapshot.family_id, at=at, field="replacement")
    if retires_at is None or (snapshot.retires_at is not None and retires_at >= snapshot.retires_at):
        return
    orgs = Organization.objects.filter(pins__snapshot=snapshot).distinct().order_by("slug")
    violations, earliest_by_org = {}, {}
    for org in orgs.select_related("accepted_terms"):
        terms = terms_in_force(org=org, at=at)
        earliest = at + dt.timedelta(days=terms.min_notice_days)
        if retires_at < earliest:
            violations[org.slug] = earliest.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            earliest_by_org[org.slug] = earliest
    if violations:
        listing = "; ".join(
            f"{slug}: not before {instant_words(when)}" for slug, when in earliest_by_org.items()
        )
        raise Conflict(
            f"Retiring {snapshot.name} on {instant_words(retires_at)} gives too little notice under the "
            f"accepted terms of {len(violations)} organisation(s): {listing}.",
            fields={"retires_at": listing, "organizations": violations},
            code="contract_guard",
        )


@transaction.atomic
def snapshot_lifecycle_set(
    *,
    snapshot: Snapshot,
    deprecated_at: dt.datetime | None,
    retires_at: dt.datetime | None,
    retention_until: dt.datetime | None,
    replacement: Snapshot | None,
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> Snapshot:
    """Set a snapshot's lifecycle dates and replacement (staff), under the CONTRACT GUARD.

    An earlier (or first) retirement date must leave every organisation pinned to the snapshot at
    least the min_notice_days of its accepted terms; otherwise nothing changes and the refusal lists
    each such organisation with its earliest lawful date. Deprecating offers the replacement to
    manual / on-retirement pins, and open migrations away from the snapshot take the new deadline.
    """

    at = at or timezone.now()
    current = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
    snapshot_lifecycle_check(snapshot=current, retires_at=retires_at, replacement=replacement, at=at)
    data = {
        field: value
        for field, value in (
            ("deprecated_at", deprecated_at),
            ("retires_at", retires_at),
            ("retention_until", retention_until),
            ("replacement", replacement),
        )
        if getattr(current, field) != value
    }
    if not data:
        return current
    newly_deprecated = deprecated_at is not None and current.deprecated_at is None
    updated = snapshot_update(snapshot=current, data=data)
    if "retires_at" in data:
        Migration.objects.filter(from_snapshot=updated, state__in=OPEN_MIGRATION_STATES).update(
            deadline=updated.retires_at
        )
    if newly_deprecated or ("replacement" in data and updated.deprecated_at is not None):
        migrations_propose_for_deprecation(snapshot=updated, acting_user=acting_user, at=at)
    return updated
