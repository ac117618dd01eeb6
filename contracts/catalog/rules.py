"""The lifecycle rules of a move: which snapshot an alias, a pin or a migration may be pointed at.

One place, called by every service that points something at a snapshot (alias_move, pin_set,
migration_propose), so the admin, the API, commands and tasks obey the same rules. A refusal names
the field and says, in words, what is wrong and from when.
"""

from __future__ import annotations

import datetime as dt

from contracts.errors import ApplicationError, Conflict
from contracts.instants import instant_words
from contracts.models import ExtendedSupport, ModelFamily, Organization, Snapshot, SnapshotStatus


def move_target_check(
    *,
    snapshot: Snapshot,
    family: ModelFamily | int,
    at: dt.datetime,
    field: str,
    org: Organization | None = None,
) -> None:
    """Refuse a move onto `snapshot` at `at` unless it is a released, still-served snapshot of `family`.

    Refused: another family, a draft, a snapshot not yet released, a purged one, and a retired one
    (unless `org` holds extended support for it that runs at `at`).
    """
    family_id = family if isinstance(family, int) else family.pk
    if snapshot.family_id != family_id:
        family_slug = (
            family.slug if isinstance(family, ModelFamily) else ModelFamily.objects.get(pk=family_id).slug
        )
        raise ApplicationError(
            f"{snapshot.name} is not a snapshot of the {family_slug} family.",
            fields={field: f"Must be a snapshot of the {family_slug} family."},
            code="wrong_family",
        )
    status = snapshot.status_at(at)
    if status == SnapshotStatus.DRAFT:
        raise ApplicationError(
            f"{snapshot.name} is not published yet.", fields={field: "Publish it first."}, code="not_released"
        )
    if status == SnapshotStatus.PREVIEW:
        when = instant_words(snapshot.released_at)
        raise ApplicationError(
            f"{snapshot.name} is not released until {when}.",
            fields={field: f"Not released until {when}."},
            code="not_released",
        )
    if status == SnapshotStatus.PURGED:
        when = instant_words(snapshot.retention_until, with_time=False)
        raise Conflict(
            f"{snapshot.name} was purged on {when}: its artifact no longer exists.",
            fields={field: f"Purged on {when}."},
            code="purged",
        )
    if status == SnapshotStatus.RETIRED and not (
        org is not None
        and ExtendedSupport.objects.filter(
            organization=org, snapshot=snapshot, starts_at__lte=at, until__gt=at
        ).exists()
    ):
        when = instant_words(snapshot.retires_at, with_time=False)
        raise Conflict(
            f"{snapshot.name} retired on {when} and no longer serves.",
            fields={field: f"Retired on {when}."},
            code="retired",
        )
