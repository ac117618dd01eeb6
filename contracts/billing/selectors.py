"""Reads of billing: extended-support grants and what an organisation may buy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from contracts.errors import Conflict, NotFound
from contracts.models import (
    ContractTerms,
    ExtendedSupport,
    Organization,
    Pin,
    Snapshot,
    SnapshotStatus,
)

PURPOSE_EXTENDED_SUPPORT = "extended-support"


# Statuses at which a pin may buy extended support: announced deprecation, or already retired.
PURCHASABLE_STATUSES = (SnapshotStatus.DEPRECATED, SnapshotStatus.RETIRED)


def extended_support_active(
    *, org: Organization, snapshot: Snapshot, at: dt.datetime | None = None
) -> ExtendedSupport | None:
    at = at or timezone.now()
    return (
        ExtendedSupport.objects.filter(organization=org, snapshot=snapshot, starts_at__lte=at, until__gt=at)
        .order_by("-until")
        .first()
    )


def extended_support_list(*, org: Organization) -> list[ExtendedSupport]:
    return list(
        ExtendedSupport.objects.filter(organization=org).select_related("snapshot").order_by("-until")
    )


@dataclass(frozen=True)
class PurchaseOption:
    """A snapshot one of the organisation's pins is on, deprecated or retired, and whether it can be bought."""

    snapshot: Snapshot
    aliases: tuple[str, ...]
    status: str
    offered: bool
    until: dt.datetime | None
    active_grant: ExtendedSupport | None
    refusal: str
    price: str = ""  # in words, filled in by the page (billing.stripe.price_text)

    @property
    def purchasable(self) -> bool:
        return not self.refusal


def _refusal(*, snapshot: Snapshot, status: str, active: ExtendedSupport | None, at: dt.datetime) -> str:
    if status not in PURCHASABLE_STATUSES:
        return f"{snapshot.name} is not deprecated."
    if not snapshot.extended_support_offered or not snapshot.extended_support_price_id:
        return f"Extended support is not offered for {snapshot.name}."
    if not snapshot.extended_support_until or snapshot.extended_support_until <= at:
        return f"Extended support for {snapshot.name} is no longer sold."
    if active is not None:
        return f"Already covered until {active.until.day} {active.until:%B %Y}."
    return ""


def extended_support_options(*, org: Organization, at: dt.datetime | None = None) -> list[PurchaseOption]:
    """Every deprecated or retired snapshot the organisation's pins are on (two queries)."""
    at = at or timezone.now()
    by_snapshot: dict[int, tuple[Snapshot, list[str]]] = {}
    for pin in (
        Pin.objects.filter(organization=org).select_related("snapshot", "alias").order_by("alias__name")
    ):
        if pin.snapshot.status_at(at) in PURCHASABLE_STATUSES:
            by_snapshot.setdefault(pin.snapshot_id, (pin.snapshot, []))[1].append(pin.alias.name)
    grants: dict[int, ExtendedSupport] = {}
    for grant in ExtendedSupport.objects.filter(
        organization=org, snapshot_id__in=list(by_snapshot), starts_at__lte=at, until__gt=at
    ).order_by("until"):
        grants[grant.snapshot_id] = grant
    options = []
    for snapshot_id, (snapshot, aliases) in sorted(by_snapshot.items(), key=lambda item: item[1][0].name):
        status = snapshot.status_at(at)
        active = grants.get(snapshot_id)
        options.append(
            PurchaseOption(
                snapshot=snapshot,
                aliases=tuple(aliases),
                status=status,
                offered=bool(snapshot.extended_support_offered and snapshot.extended_support_price_id),
                until=snapshot.extended_support_until,
                active_grant=active,
                refusal=_refusal(snapshot=snapshot, status=status, active=active, at=at),
            )
        )
    return options


def extended_support_option(
    *, org: Organization, snapshot_name: str, at: dt.datetime | None = None
) -> PurchaseOption:
    """The purchase option for one snapshot; refuses (404/409) when it cannot be bought."""
    at = at or timezone.now()
    snapshot = Snapshot.objects.filter(name=snapshot_name, published_at__isnull=False).first()
    if snapshot is None:
        raise NotFound(f"No snapshot {snapshot_name!r}.", fields={"snapshot": "Unknown snapshot."})
    option = next((o for o in extended_support_options(org=org, at=at) if o.snapshot.pk == snapshot.pk), None)
    if option is None and Pin.objects.filter(organization=org, snapshot=snapshot).exists():
        raise Conflict(
            f"{snapshot.name} is not deprecated: extended support is sold only for deprecated snapshots.",
            fields={"snapshot": "Not deprecated."},
        )
    if option is None:
        raise Conflict(
            f"No pin of {org.slug} is on a deprecated snapshot named {snapshot.name}.",
            fields={"snapshot": "Must be the deprecated snapshot one of your pins is on."},
        )
    if option.refusal:
        raise Conflict(option.refusal, fields={"snapshot": option.refusal})
    return option


def tier_terms(*, tier: str, at: dt.datetime | None = None) -> ContractTerms | None:
    """The newest terms a tier offers (in force now; a future version only when none is)."""
    at = at or timezone.now()
    terms = ContractTerms.objects.filter(tier=tier)
    return (
        terms.filter(effective_at__lte=at).order_by("-effective_at").first()
        or terms.order_by("effective_at").first()
    )
