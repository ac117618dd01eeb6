"""Reads of terms, migrations and the ledger, scoped to one organisation."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from contracts.canonical import canonical_json
from contracts.catalog.selectors import snapshot_status_q, successor_newest_active
from contracts.diffs.compute import CHANGE_COUNTS
from contracts.diffs.selectors import diff_build
from contracts.errors import ApplicationError, NotFound
from contracts.evals.selectors import baseline_deltas
from contracts.models import (
    OPEN_MIGRATION_STATES,
    ConsentRecord,
    ContractTerms,
    Migration,
    MigrationState,
    Organization,
    Pin,
    Snapshot,
    SnapshotStatus,
)

# --------------------------------------------------------------------------------------------
# Terms
# --------------------------------------------------------------------------------------------


def terms_current(*, tier: str, at: dt.datetime | None = None) -> ContractTerms | None:
    """The newest terms of a tier already in effect at `at` (now by default)."""
    at = at or timezone.now()
    return (
        ContractTerms.objects.filter(tier=tier, effective_at__lte=at).order_by("-effective_at", "-id").first()
    )


def terms_in_force(*, org: Organization, at: dt.datetime | None = None) -> ContractTerms:
    """The terms whose parameters govern the organisation's decisions.

    The accepted version when there is one; otherwise the current terms of its tier; otherwise an
    unsaved ContractTerms carrying the model's default parameters (so rules always have numbers).
    """
    if org.accepted_terms_id:
        return ContractTerms.objects.get(pk=org.accepted_terms_id)
    current = terms_current(tier=org.tier, at=at)
    if current is not None:
        return current
    return ContractTerms(version="", body_sha256="", retired_bug_policy="")


def terms_pending(*, org: Organization, at: dt.datetime | None = None) -> ContractTerms | None:
    """The current terms of the organisation's tier when it has not accepted them (else None)."""
    current = terms_current(tier=org.tier, at=at)
    if current is None or current.pk == org.accepted_terms_id:
        return None
    return current


def terms_get(*, org: Organization, version: str) -> ContractTerms:
    """Terms an organisation may read: those of its tier, and the version it accepted."""
    terms = ContractTerms.objects.filter(version=version).first()
    if terms is None or (terms.tier != org.tier and terms.pk != org.accepted_terms_id):
        raise NotFound(f"No terms version {version!r} for this organisation.")
    return terms


def terms_list(*, org: Organization) -> list[ContractTerms]:
    return list(ContractTerms.objects.filter(tier=org.tier).order_by("-effective_at", "-id"))


# --------------------------------------------------------------------------------------------
# Migrations
# --------------------------------------------------------------------------------------------


def migration_list(*, org: Organization, state: str | None = None) -> QuerySet[Migration]:
    qs = Migration.objects.filter(organization=org).select_related(
        "organization", "pin", "pin__alias", "from_snapshot", "to_snapshot", "decided_by"
    )
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-proposed_at", "-id")


def migration_get(*, org: Organization, migration_id: int) -> Migration:
    if not 0 < migration_id < 2**63:
        raise NotFound("No such migration in this organisation.")
    migration = migration_list(org=org).filter(pk=migration_id).first()
    if migration is None:
        raise NotFound("No such migration in this organisation.")
    return migration


def migration_records(*, migration: Migration) -> list[ConsentRecord]:
    return list(ConsentRecord.objects.filter(migration=migration).order_by("seq"))


def snapshot_fingerprint(snapshot: Snapshot) -> dict:
    return {"id": snapshot.name, "digest": snapshot.digest, "config": snapshot.config}


def diff_sha256(*, org: Organization, from_snapshot: Snapshot, to_snapshot: Snapshot) -> str:
    """sha256 of the diff an actor is shown before deciding: the `content_sha256` of the document
    `/o/<org>/diff/<from>...<to>/` renders; when no diff can be built between the two (the diff refuses
    them), sha256 of the canonical JSON {"from": F, "to": T} where F and T are {"id", "digest",
    "config"} of each snapshot (the frozen part of any diff).
    """
    try:
        return diff_build(org=org, a=from_snapshot.name, b=to_snapshot.name)["content_sha256"]
    except ApplicationError:
        pass
    body = {"from": snapshot_fingerprint(from_snapshot), "to": snapshot_fingerprint(to_snapshot)}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def consent_facts(*, org: Organization, migration: Migration, terms: ContractTerms) -> dict:
    """Everything the consent confirmation shows besides the terms, as plain JSON: the diff's
    summary, the procurement-baseline verdict for the target snapshot, and the rollback window.
    The ledger record of a consent given on that screen carries exactly this (and its sha256 lets
    the service refuse a consent whose screen is out of date)."""
    document = diff_build(org=org, a=migration.from_snapshot.name, b=migration.to_snapshot.name)
    baseline = []
    for delta in baseline_deltas(org=org, snapshots=[migration.to_snapshot]):
        verdict = "not measured" if not delta.measured else ("meets" if delta.meets_baseline else "below")
        baseline.append(
            {
                "suite": delta.baseline.suite.name,
                "baseline_snapshot": delta.baseline.result.snapshot.name,
                "verdict": verdict,
                "regressions": sorted(m["metric"] for m in delta.regressions),
            }
        )
    return {
        "diff_sha256": document["content_sha256"],
        "diff_summary": {key: document["summary"][key] for key in CHANGE_COUNTS},
        "baseline": baseline,
        "rollback_window_hours": terms.rollback_window_hours,
    }


def consent_facts_sha256(facts: dict) -> str:
    return hashlib.sha256(canonical_json(facts)).hexdigest()


def diff_url(*, org: Organization, migration: Migration) -> str:
    return f"/o/{org.slug}/diff/{migration.from_snapshot.name}...{migration.to_snapshot.name}/"


# --------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------


def consent_list(
    *,
    org: Organization,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[ConsentRecord]:
    """The organisation's ledger, newest first; `since`/`until` bound created_at (inclusive)."""
    qs = ConsentRecord.objects.filter(organization=org).select_related("migration")
    if action:
        qs = qs.filter(action=action)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lte=until)
    return qs.order_by("-seq")


OPEN_STATES_FOR_DISPLAY = (MigrationState.PROPOSED, MigrationState.CONSENTED, MigrationState.DEFERRED)


def organization_terms_notice_days(*, org: Organization, default: int = 90) -> int:
    """Minimum notice before retirement under the organisation's accepted terms (else the default)."""
    if org.accepted_terms_id is None:
        return default
    terms = ContractTerms.objects.filter(pk=org.accepted_terms_id).only("min_notice_days").first()
    return terms.min_notice_days if terms else default


@dataclass(frozen=True)
class WayForward:
    """What a pin on a deprecated snapshot, with no open migration, can do next."""

    pin: Pin
    best: Snapshot | None  # the newest active successor: the one to propose by default
    choices: list[Snapshot]  # every snapshot of the family that serves, newest first
    last: Migration | None  # the migration that closed last (rolled back, declined…), if any


def way_forward(*, org: Organization, pin: Pin, at: dt.datetime | None = None) -> WayForward | None:
    """The options of a pin left on a deprecated snapshot with no open migration (after a
    rollback, a decline, or a deprecation without replacement): None when it needs none."""
    at = at or timezone.now()
    if pin.organization_id != org.pk:
        return None
    snapshot = pin.snapshot
    if snapshot.status_at(at) not in (SnapshotStatus.DEPRECATED, SnapshotStatus.RETIRED):
        return None
    if Migration.objects.filter(pin=pin, state__in=OPEN_MIGRATION_STATES).exists():
        return None
    choices = [
        s
        for s in Snapshot.objects.filter(family_id=snapshot.family_id, published_at__isnull=False)
        .exclude(pk=snapshot.pk)
        .order_by("-released_at", "-id")
        if s.status_at(at) == SnapshotStatus.ACTIVE
    ]
    last = (
        Migration.objects.filter(pin=pin)
        .select_related("to_snapshot")
        .order_by("-proposed_at", "-id")
        .first()
    )
    return WayForward(
        pin=pin, best=successor_newest_active(snapshot=snapshot, at=at), choices=choices, last=last
    )


def ways_forward_pins(*, org: Organization, at: dt.datetime | None = None) -> QuerySet[Pin]:
    """The pins of the organisation that need a way forward, in SQL (pageable): on a deprecated or
    retired snapshot (the catalogue's own status rule, read by the database) with no open migration."""
    at = at or timezone.now()
    return (
        Pin.objects.filter(organization=org)
        .filter(
            snapshot_status_q(SnapshotStatus.DEPRECATED, at=at, prefix="snapshot__")
            | snapshot_status_q(SnapshotStatus.RETIRED, at=at, prefix="snapshot__")
        )
        .exclude(Exists(Migration.objects.filter(pin=OuterRef("pk"), state__in=OPEN_MIGRATION_STATES)))
        .select_related("alias", "snapshot", "snapshot__replacement", "snapshot__family")
        .order_by("pk")
    )


def ways_forward(
    *, org: Organization, at: dt.datetime | None = None, pins: Iterable[Pin] | None = None
) -> list[WayForward]:
    """The way forward of each of `pins` (default: every pin that needs one; pass a page of
    ways_forward_pins() to bound the work). The same answers as way_forward, pin by pin, in a fixed
    number of queries however many pins."""
    at = at or timezone.now()
    pins = list(ways_forward_pins(org=org, at=at) if pins is None else pins)
    if not pins:
        return []
    by_family: dict[int, list[Snapshot]] = {}
    for s in Snapshot.objects.filter(
        family_id__in={pin.snapshot.family_id for pin in pins}, published_at__isnull=False
    ).order_by("-released_at", "-id"):
        if s.status_at(at) == SnapshotStatus.ACTIVE:
            by_family.setdefault(s.family_id, []).append(s)
    last: dict[int, Migration] = {}
    for m in (
        Migration.objects.filter(pin__in=[pin.pk for pin in pins])
        .select_related("to_snapshot")
        .order_by("pin_id", "-proposed_at", "-id")
    ):
        last.setdefault(m.pin_id, m)
    best: dict[int, Snapshot | None] = {}
    found = []
    for pin in pins:
        snapshot = pin.snapshot
        if snapshot.pk not in best:
            best[snapshot.pk] = successor_newest_active(snapshot=snapshot, at=at)
        choices = [s for s in by_family.get(snapshot.family_id, []) if s.pk != snapshot.pk]
        found.append(WayForward(pin=pin, best=best[snapshot.pk], choices=choices, last=last.get(pin.pk)))
    return found
