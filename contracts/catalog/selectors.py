"""Reads of the catalog: snapshots, aliases and their history, the changelog."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from contracts.errors import NotFound
from contracts.models import (
    Alias,
    AliasMove,
    ChangelogEntry,
    ExtendedSupport,
    Organization,
    Pin,
    Snapshot,
    SnapshotStatus,
)


def snapshot_status_q(status: str, *, at: dt.datetime, prefix: str = "") -> Q:
    """The database's reading of Snapshot.status_at(at) == status (`prefix` reaches a related
    snapshot, e.g. "snapshot__"), so lists filter by status in SQL and paginate."""

    def f(name: str, lookup: str = "") -> str:
        return f"{prefix}{name}{'__' + lookup if lookup else ''}"

    def reached(name: str) -> Q:
        return Q(**{f(name, "lte"): at})

    def not_reached(name: str) -> Q:
        return Q(**{f(name, "isnull"): True}) | Q(**{f(name, "gt"): at})

    published = Q(**{f("published_at", "isnull"): False})
    if status == SnapshotStatus.DRAFT:
        return ~published
    if status == SnapshotStatus.PURGED:
        return published & reached("retention_until")
    if status == SnapshotStatus.RETIRED:
        return published & not_reached("retention_until") & reached("retires_at")
    live = published & not_reached("retention_until") & not_reached("retires_at")
    if status == SnapshotStatus.DEPRECATED:
        return live & reached("deprecated_at")
    live &= not_reached("deprecated_at")
    if status == SnapshotStatus.PREVIEW:
        return live & Q(**{f("released_at", "gt"): at})
    return live & Q(**{f("released_at", "lte"): at})


def snapshot_list(*, family: str | None = None, status: str | None = None) -> QuerySet[Snapshot]:
    qs = (
        Snapshot.objects.filter(published_at__isnull=False)
        .select_related("family", "replacement")
        .order_by("family__slug", "released_at", "id")
    )
    if family:
        qs = qs.filter(family__slug=family)
    if status:
        qs = qs.filter(snapshot_status_q(status, at=timezone.now()))
    return qs


def snapshot_get(*, name: str) -> Snapshot:
    snapshot = (
        Snapshot.objects.filter(name=name, published_at__isnull=False)
        .select_related("family", "replacement")
        .first()
    )
    if snapshot is None:
        raise NotFound(f"No snapshot {name!r}.")
    return snapshot


def alias_get(*, name: str) -> Alias:
    alias = Alias.objects.select_related("family", "target").filter(name=name).first()
    if alias is None:
        raise NotFound(f"No alias {name!r}.")
    return alias


def alias_moves(*, alias: Alias) -> QuerySet[AliasMove]:
    return (
        AliasMove.objects.filter(alias=alias)
        .select_related("from_snapshot", "to_snapshot")
        .order_by("moved_at", "id")
    )


def alias_history(*, name: str) -> tuple[Alias, list[AliasMove]]:
    alias = alias_get(name=name)
    return alias, list(alias_moves(alias=alias))


def alias_moves_involving(*, snapshot: Snapshot) -> list[AliasMove]:
    return list(
        AliasMove.objects.filter(Q(from_snapshot=snapshot) | Q(to_snapshot=snapshot))
        .select_related("alias", "from_snapshot", "to_snapshot")
        .order_by("moved_at", "id")
    )


def snapshot_summary(snapshot: Snapshot, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """The facts a caller needs about a served snapshot (also what the resolve cache holds)."""

    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": snapshot.name,
        "family": snapshot.family.slug,
        "digest": snapshot.digest,
        "status": snapshot.status_at(at),
        "released_at": iso(snapshot.released_at),
        "deprecated_at": iso(snapshot.deprecated_at),
        "retires_at": iso(snapshot.retires_at),
        "retention_until": iso(snapshot.retention_until),
        "replacement": snapshot.replacement.name if snapshot.replacement_id else None,
        "deprecation_notice_url": snapshot.deprecation_notice_url or None,
        "config": snapshot.config,
    }


def changelog_list(
    *,
    org: Organization,
    family: str | None = None,
    kind: str | None = None,
    affecting_pins: bool = False,
) -> QuerySet[ChangelogEntry]:
    """Changelog entries of published snapshots, newest first.

    `affecting_pins`: only entries of snapshots in the families of this organisation's pins that are
    newer than the pinned snapshot (the oldest pinned one when a family has several pins).
    """
    qs = (
        ChangelogEntry.objects.filter(snapshot__published_at__isnull=False)
        .select_related("snapshot", "snapshot__family")
        .order_by("-published_at", "-id")
    )
    if family:
        qs = qs.filter(snapshot__family__slug=family)
    if kind:
        qs = qs.filter(kind=kind)
    if affecting_pins:
        oldest = (
            Pin.objects.filter(organization=org)
            .values("snapshot__family_id")
            .annotate(oldest=Min("snapshot__released_at"))
        )
        condition = Q(pk__in=[])
        for row in oldest:
            condition |= Q(
                snapshot__family_id=row["snapshot__family_id"], snapshot__released_at__gt=row["oldest"]
            )
        qs = qs.filter(condition)
    return qs


def successor_newest_active(*, snapshot: Snapshot, at: dt.datetime | None = None) -> Snapshot | None:
    """The snapshot to move to from `snapshot`: the newest snapshot of its family, released after
    it, that is active at `at` (released and not deprecated). A replacement that is itself
    deprecated is never named while an active successor exists; with none, the replacement if it
    still serves, else None. The `successor-version` link, the public deprecation page and the
    "way forward" after a rollback all name this one."""
    at = at or timezone.now()
    newest = (
        Snapshot.objects.filter(
            family_id=snapshot.family_id,
            published_at__isnull=False,
            released_at__gt=snapshot.released_at,
            released_at__lte=at,
        )
        .filter(Q(deprecated_at__isnull=True) | Q(deprecated_at__gt=at))
        .select_related("family")
        .order_by("-released_at", "-id")
        .first()
    )
    if newest is not None:
        return newest
    replacement = snapshot.replacement if snapshot.replacement_id else None
    if replacement is not None and replacement.status_at(at) in ("active", "deprecated"):
        return replacement
    return None


def snapshot_changelog(*, snapshot: Snapshot | None, limit: int = 20) -> list[ChangelogEntry]:
    """The newest changelog entries of one snapshot (public catalog data)."""
    if snapshot is None:
        return []
    return list(ChangelogEntry.objects.filter(snapshot=snapshot).order_by("-published_at", "-id")[:limit])


@dataclass(frozen=True)
class Announcement:
    """A lifecycle event the changelog and the Atom feed announce beside the vendor's entries."""

    kind: str  # deprecation, retirement, extended-support, extended-support-end
    at: dt.datetime
    snapshot: Snapshot
    title: str
    body: str


def lifecycle_announcements(
    *, org: Organization, family: str | None = None, at: dt.datetime | None = None, limit: int = 50
) -> list[Announcement]:
    """Deprecations and retirements of published snapshots that have happened by `at`, and the
    organisation's own extended-support grants (bought, ended), newest first."""
    at = at or timezone.now()
    snapshots = Snapshot.objects.filter(published_at__isnull=False, deprecated_at__lte=at).select_related(
        "family", "replacement"
    )
    grants = ExtendedSupport.objects.filter(organization=org, starts_at__lte=at).select_related(
        "snapshot", "snapshot__family"
    )
    if family:
        snapshots = snapshots.filter(family__slug=family)
        grants = grants.filter(snapshot__family__slug=family)
    events: list[Announcement] = []
    for snapshot in snapshots.order_by("-deprecated_at")[:limit]:
        replacement = f" {snapshot.replacement.name} replaces it." if snapshot.replacement_id else ""
        retires = (
            f" It retires on {snapshot.retires_at.day} {snapshot.retires_at:%B %Y}."
            if snapshot.retires_at
            else ""
        )
        events.append(
            Announcement(
                "deprecation",
                snapshot.deprecated_at,
                snapshot,
                f"Deprecated: {snapshot.name}",
                f"{snapshot.name} is deprecated.{retires}{replacement}",
            )
        )
        if snapshot.retires_at and snapshot.retires_at <= at:
            events.append(
                Announcement(
                    "retirement",
                    snapshot.retires_at,
                    snapshot,
                    f"Retired: {snapshot.name}",
                    f"{snapshot.name} no longer serves (except under extended support).{replacement}",
                )
            )
    for grant in grants.order_by("-starts_at")[:limit]:
        events.append(
            Announcement(
                "extended-support",
                grant.starts_at,
                grant.snapshot,
                f"Extended support: {grant.snapshot.name}",
                f"Your extended support keeps {grant.snapshot.name} serving you until "
                f"{grant.until.day} {grant.until:%B %Y}.",
            )
        )
        if grant.until <= at:
            events.append(
                Announcement(
                    "extended-support-end",
                    grant.until,
                    grant.snapshot,
                    f"Extended support ended: {grant.snapshot.name}",
                    f"Your extended support of {grant.snapshot.name} ended.",
                )
            )
    return sorted(events, key=lambda e: e.at, reverse=True)[:limit]
