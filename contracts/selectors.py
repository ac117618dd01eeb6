"""Reads of the catalog and of an organisation's pins, shared by the pages and the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from contracts.models import (
    OPEN_MIGRATION_STATES,
    Alias,
    AliasMove,
    ApiKey,
    ApiKeyScope,
    ChangelogEntry,
    ContractTerms,
    ExtendedSupport,
    Organization,
    Pin,
    PinChange,
    Snapshot,
)
from contracts.services import resolve_cache_key, resolve_generation
from portal.exceptions import NotFound

# --------------------------------------------------------------------------------------------
# Catalog (public to every authenticated organisation: the vendor's published snapshots)
# --------------------------------------------------------------------------------------------


def snapshot_list(*, family: str | None = None, status: str | None = None) -> list[Snapshot]:
    qs = (
        Snapshot.objects.filter(published_at__isnull=False)
        .select_related("family", "replacement")
        .order_by("family__slug", "released_at")
    )
    if family:
        qs = qs.filter(family__slug=family)
    snapshots = list(qs)
    if status:
        now = timezone.now()
        snapshots = [s for s in snapshots if s.status_at(now) == status]
    return snapshots


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


def alias_history(*, name: str) -> tuple[Alias, list[AliasMove]]:
    alias = alias_get(name=name)
    moves = list(
        AliasMove.objects.filter(alias=alias)
        .select_related("from_snapshot", "to_snapshot")
        .order_by("moved_at", "id")
    )
    return alias, moves


def alias_moves_involving(*, snapshot: Snapshot) -> list[AliasMove]:
    return list(
        AliasMove.objects.filter(Q(from_snapshot=snapshot) | Q(to_snapshot=snapshot))
        .select_related("alias", "from_snapshot", "to_snapshot")
        .order_by("moved_at", "id")
    )


# --------------------------------------------------------------------------------------------
# Pins (scoped to one organisation)
# --------------------------------------------------------------------------------------------


def pin_list(*, org: Organization) -> QuerySet[Pin]:
    return (
        Pin.objects.filter(organization=org)
        .select_related("alias", "alias__family", "snapshot", "snapshot__family", "snapshot__replacement")
        .annotate(open_migrations=Count("migrations", filter=Q(migrations__state__in=OPEN_MIGRATION_STATES)))
        .order_by("alias__name")
    )


def pin_get(*, org: Organization, pin_id: int) -> Pin:
    pin = pin_list(org=org).filter(pk=pin_id).first()
    if pin is None:
        raise NotFound("No such pin in this organisation.")
    return pin


def pin_history(*, org: Organization, alias: Alias | None = None) -> list[PinChange]:
    qs = PinChange.objects.filter(organization=org).select_related(
        "alias", "from_snapshot", "to_snapshot", "actor"
    )
    if alias is not None:
        qs = qs.filter(alias=alias)
    return list(qs.order_by("-changed_at", "-id"))


# --------------------------------------------------------------------------------------------
# Resolve: which snapshot serves (or served) an organisation on an alias
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    alias: str
    organization: str
    snapshot: dict[str, Any]
    source: str  # "pin" or "alias-default"
    policy: str | None
    at: dt.datetime | None
    extended_support_until: str | None = None  # a paid grant keeps this snapshot served until then

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "organization": self.organization,
            "at": self.at.isoformat() if self.at else None,
            "source": self.source,
            "policy": self.policy,
            "snapshot": self.snapshot,
            "extended_support_until": self.extended_support_until,
        }


def _extended_support_until(*, org: Organization, snapshot: Snapshot, at: dt.datetime) -> dt.datetime | None:
    """End of the organisation's extended-support grant on a snapshot active at `at` (billing)."""
    if snapshot.deprecated_at is None:
        return None  # grants exist only for deprecated snapshots: no query for the others
    return (
        ExtendedSupport.objects.filter(organization=org, snapshot=snapshot, starts_at__lte=at, until__gt=at)
        .order_by("-until")
        .values_list("until", flat=True)
        .first()
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


def _seconds_until_next_boundary(snapshot: Snapshot, now: dt.datetime) -> int:
    """Status is a function of time: never cache a resolution across a lifecycle date."""
    ttl = settings.RESOLVE_CACHE_SECONDS
    for boundary in (snapshot.released_at, snapshot.deprecated_at, snapshot.retires_at, snapshot.retention_until):
        if boundary and boundary > now:
            ttl = min(ttl, int((boundary - now).total_seconds()))
    return max(ttl, 1)


def resolve(*, org: Organization, alias: str, at: dt.datetime | None = None) -> Resolution:
    """The snapshot that serves `org` on `alias` now, or served it at instant `at`.

    Now: the organisation's pin, else the alias default; cached until the next pin change, catalog
    change or lifecycle date. At a past instant: the last PinChange at or before it, else the last
    AliasMove at or before it.
    """
    if at is None:
        generation = resolve_generation()
        key = resolve_cache_key(org_id=org.pk, alias_name=alias, generation=generation)
        cached = cache.get(key)
        # The entry carries its own expiry too: a lifecycle date is reached by the clock, not by a write.
        if cached is not None and cached.pop("expires_at", 0) > timezone.now().timestamp():
            return Resolution(at=None, **cached)
        resolution, ttl = _resolve_now(org=org, alias_name=alias)
        cached = resolution.as_dict()
        cached.pop("at")
        cached["expires_at"] = timezone.now().timestamp() + ttl
        cache.set(key, cached, ttl)
        return resolution
    return _resolve_at(org=org, alias_name=alias, at=at)


def _resolve_now(*, org: Organization, alias_name: str) -> tuple[Resolution, int]:
    now = timezone.now()
    pin = (
        Pin.objects.filter(organization=org, alias__name=alias_name)
        .select_related("alias", "snapshot", "snapshot__family", "snapshot__replacement")
        .first()
    )
    if pin is not None:
        snapshot, source, policy = pin.snapshot, "pin", pin.policy
    else:
        alias = (
            Alias.objects.filter(name=alias_name)
            .select_related("target", "target__family", "target__replacement")
            .first()
        )
        if alias is None:
            raise NotFound(f"No alias {alias_name!r}.")
        snapshot, source, policy = alias.target, "alias-default", None
    grant_until = _extended_support_until(org=org, snapshot=snapshot, at=now) if pin is not None else None
    resolution = Resolution(
        alias=alias_name,
        organization=org.slug,
        snapshot=snapshot_summary(snapshot, at=now),
        source=source,
        policy=policy,
        at=None,
        extended_support_until=grant_until.isoformat() if grant_until else None,
    )
    ttl = _seconds_until_next_boundary(snapshot, now)
    if grant_until:
        ttl = max(1, min(ttl, int((grant_until - now).total_seconds())))
    return resolution, ttl


def _resolve_at(*, org: Organization, alias_name: str, at: dt.datetime) -> Resolution:
    alias = alias_get(name=alias_name)
    if at < alias.created_at:
        raise NotFound(
            f"Alias {alias_name!r} did not exist at {at.isoformat()}; it was created "
            f"{alias.created_at.isoformat()}.",
            fields={"at": f"Must be at or after {alias.created_at.isoformat()}."},
        )
    change = (
        PinChange.objects.filter(organization=org, alias=alias, changed_at__lte=at)
        .select_related("to_snapshot", "to_snapshot__family", "to_snapshot__replacement")
        .order_by("-changed_at", "-id")
        .first()
    )
    if change is not None:
        grant_until = _extended_support_until(org=org, snapshot=change.to_snapshot, at=at)
        return Resolution(
            alias=alias_name,
            organization=org.slug,
            snapshot=snapshot_summary(change.to_snapshot, at=at),
            source="pin",
            policy=change.to_policy,
            at=at,
            extended_support_until=grant_until.isoformat() if grant_until else None,
        )
    move = (
        AliasMove.objects.filter(alias=alias, moved_at__lte=at)
        .select_related("to_snapshot", "to_snapshot__family", "to_snapshot__replacement")
        .order_by("-moved_at", "-id")
        .first()
    )
    if move is None:
        raise NotFound(
            f"Alias {alias_name!r} had no target at {at.isoformat()}.",
            fields={"at": "Before the alias's first target."},
        )
    return Resolution(
        alias=alias_name,
        organization=org.slug,
        snapshot=snapshot_summary(move.to_snapshot, at=at),
        source="alias-default",
        policy=None,
        at=at,
    )


def resolve_snapshot_at(*, org: Organization, alias: str, at: dt.datetime) -> Snapshot:
    """The Snapshot model instance that served `org` on `alias` at `at` (bug reports use this)."""
    resolution = _resolve_at(org=org, alias_name=alias, at=at)
    return Snapshot.objects.select_related("family").get(name=resolution.snapshot["id"])


# --------------------------------------------------------------------------------------------
# Portal pages: snapshot page, changelog, API keys (scoped to one organisation)
# --------------------------------------------------------------------------------------------


def pins_using_snapshot(*, org: Organization, snapshot: Snapshot) -> list[Pin]:
    return list(pin_list(org=org).filter(snapshot=snapshot))


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
            condition |= Q(snapshot__family_id=row["snapshot__family_id"], snapshot__released_at__gt=row["oldest"])
        qs = qs.filter(condition)
    return qs


def api_key_list(*, org: Organization) -> list[ApiKey]:
    return list(
        ApiKey.objects.filter(organization=org, scope=ApiKeyScope.ORGANIZATION)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )


def api_key_get(*, org: Organization, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(organization=org, scope=ApiKeyScope.ORGANIZATION, pk=key_id).first()
    if key is None:
        raise NotFound("No such API key in this organisation.")
    return key


def organization_terms_notice_days(*, org: Organization, default: int = 90) -> int:
    """Minimum notice before retirement under the organisation's accepted terms (else the default)."""
    if org.accepted_terms_id is None:
        return default
    terms = ContractTerms.objects.filter(pk=org.accepted_terms_id).only("min_notice_days").first()
    return terms.min_notice_days if terms else default
