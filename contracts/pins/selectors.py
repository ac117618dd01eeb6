"""Reads of an organisation's pins, and resolution: which snapshot serves (or served) an alias."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from contracts.catalog.selectors import alias_get, snapshot_status_q, snapshot_summary
from contracts.errors import NotFound
from contracts.models import (
    OPEN_MIGRATION_STATES,
    Alias,
    AliasMove,
    ExtendedSupport,
    Migration,
    ModelFamily,
    Organization,
    Pin,
    PinChange,
    Snapshot,
)
from contracts.pins.cache import resolve_cache_key, resolve_generation


def pin_list(
    *,
    org: Organization,
    status: str | None = None,
    family: str | None = None,
    policy: str | None = None,
    q: str | None = None,
    at: dt.datetime | None = None,
) -> QuerySet[Pin]:
    """The organisation's pins by alias name, filtered in SQL: status of the pinned snapshot at
    `at` (now), family slug of the alias, upgrade policy, and `q` (in alias, snapshot or family name)."""
    qs = (
        Pin.objects.filter(organization=org)
        .select_related("alias", "alias__family", "snapshot", "snapshot__family", "snapshot__replacement")
        # A correlated count, not a GROUP BY over every pin's migrations: the database sorts and cuts
        # the page first and counts for the rows it returns (25 of 5,000), not for all of them.
        .annotate(
            open_migrations=Coalesce(
                Subquery(
                    Migration.objects.filter(pin=OuterRef("pk"), state__in=OPEN_MIGRATION_STATES)
                    .order_by()
                    .values("pin")
                    .annotate(n=Count("pk"))
                    .values("n")
                ),
                0,
            )
        )
        .order_by("alias__name", "id")
    )
    if status:
        qs = qs.filter(snapshot_status_q(status, at=at or timezone.now(), prefix="snapshot__"))
    if family:
        qs = qs.filter(alias__family__slug=family)
    if policy:
        qs = qs.filter(policy=policy)
    if q:
        qs = qs.filter(
            Q(alias__name__icontains=q) | Q(snapshot__name__icontains=q) | Q(alias__family__name__icontains=q)
        )
    return qs


def pin_summary(*, org: Organization, at: dt.datetime, soon: dt.timedelta) -> dict[str, int]:
    """Exact counts over every pin of the organisation, in two queries however many pins."""
    counts = Pin.objects.filter(organization=org).aggregate(
        pins=Count("id"),
        deprecated=Count("id", filter=snapshot_status_q("deprecated", at=at, prefix="snapshot__")),
        retiring_soon=Count(
            "id", filter=Q(snapshot__retires_at__gte=at, snapshot__retires_at__lte=at + soon)
        ),
    )
    counts["open_migrations"] = Migration.objects.filter(
        pin__organization=org, state__in=OPEN_MIGRATION_STATES
    ).count()
    return counts


def pin_families(*, org: Organization) -> list[tuple[str, str]]:
    """(slug, name) of the families of the organisation's pinned aliases, by slug."""
    return list(
        ModelFamily.objects.filter(Exists(Pin.objects.filter(organization=org, alias__family=OuterRef("pk"))))
        .values_list("slug", "name")
        .order_by("slug")
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


@dataclass(frozen=True)
class Retirement:
    """When a snapshot stops serving one organisation: the catalog date, moved later by a grant."""

    retires_at: dt.datetime | None  # the snapshot's own retirement date
    extended_until: dt.datetime | None  # end of the organisation's extended support, if it has one
    effective: dt.datetime | None  # the later of the two: the date that organisation sees

    @property
    def extended(self) -> bool:
        return self.extended_until is not None and self.extended_until != self.retires_at


def _retirement(retires_at: dt.datetime | None, grant_until: dt.datetime | None) -> Retirement:
    if retires_at is None:
        return Retirement(retires_at=None, extended_until=None, effective=None)
    if grant_until is None or grant_until <= retires_at:
        return Retirement(retires_at=retires_at, extended_until=None, effective=retires_at)
    return Retirement(retires_at=retires_at, extended_until=grant_until, effective=grant_until)


def extended_support_ends(
    *,
    org: Organization | int | None = None,
    at: dt.datetime | None = None,
    org_ids: set[int] | None = None,
) -> dict[tuple[int, int], dt.datetime]:
    """(organisation id, snapshot id) → end of the latest extended-support grant started by `at`
    (one query; a cancelled grant ends at its cut-short `until`). `org_ids`: several organisations."""
    at = at or timezone.now()
    grants = ExtendedSupport.objects.filter(starts_at__lte=at)
    if org is not None:
        grants = grants.filter(organization=org)
    if org_ids is not None:
        grants = grants.filter(organization_id__in=org_ids)
    ends: dict[tuple[int, int], dt.datetime] = {}
    for org_id, snapshot_id, until in grants.values_list("organization_id", "snapshot_id", "until"):
        key = (org_id, snapshot_id)
        if key not in ends or until > ends[key]:
            ends[key] = until
    return ends


def effective_retirement(
    *,
    org: Organization | int,
    snapshot: Snapshot,
    at: dt.datetime | None = None,
    ends: dict[tuple[int, int], dt.datetime] | None = None,
) -> Retirement:
    """THE effective retirement of `snapshot` for `org`: its retirement date, or the end of the
    organisation's extended support when that is later. Every page, header, feed and notice that
    shows a retirement date asks here. Pass `ends` (extended_support_ends) to answer many pins
    with one query. `org` may be the organisation or its id."""
    if snapshot.retires_at is None:
        return _retirement(None, None)
    if ends is None:
        ends = extended_support_ends(org=org, at=at) if snapshot.deprecated_at is not None else {}
    org_id = org if isinstance(org, int) else org.pk
    return _retirement(snapshot.retires_at, ends.get((org_id, snapshot.pk)))


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


def _seconds_until_next_boundary(snapshot: Snapshot, at: dt.datetime) -> int:
    """Status is a function of time: never cache a resolution across a lifecycle date."""
    ttl = settings.RESOLVE_CACHE_SECONDS
    for boundary in (
        snapshot.released_at,
        snapshot.deprecated_at,
        snapshot.retires_at,
        snapshot.retention_until,
    ):
        if boundary and boundary > at:
            ttl = min(ttl, int((boundary - at).total_seconds()))
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


def pins_using_snapshot(*, org: Organization, snapshot: Snapshot) -> list[Pin]:
    return list(pin_list(org=org).filter(snapshot=snapshot))
