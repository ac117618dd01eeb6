"""Reads of the data plane: the pin map (full and deltas), gateways, and usage.

The pin map costs a constant number of queries whatever its size (snapshots, aliases, pins, active
extended-support grants: four), and the full map is built once per revision per process (and shared
through the cache), so a thousand gateways starting at once cost one build.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from contracts.errors import ApplicationError
from contracts.gateway.changelog import pin_map_oldest_since, pin_map_revision
from contracts.models import (
    OPEN_MIGRATION_STATES,
    Alias,
    ExtendedSupport,
    Migration,
    Organization,
    Pin,
    PinMapChange,
    PinMapChangeKind,
    Snapshot,
    UsageHour,
)

PROTOCOL_VERSION = 1
MAX_WAIT_SECONDS = 60


class RevisionGone(ApplicationError):
    """A delta since a revision the change log no longer reaches back to (the client fetches the full map)."""

    status_code = 410
    code = "revision_gone"


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _snapshot_entry(snapshot: Snapshot, names: dict[int, str], families: dict[int, str]) -> dict[str, Any]:
    successor = names.get(snapshot.replacement_id) if snapshot.replacement_id else None
    deprecation_url = None
    if snapshot.deprecated_at is not None:
        # A page a person can read, as resolve's Link header has it (#13): the vendor's notice, else the
        # public deprecation page (the gateway labels it text/html).
        deprecation_url = snapshot.deprecation_notice_url or settings.SITE_URL + reverse(
            "portal:snapshot_deprecation", kwargs={"snapshot_id": snapshot.name}
        )
    return {
        "family": families[snapshot.family_id],
        "digest": f"sha256:{snapshot.digest}",
        "released_at": _iso(snapshot.released_at),
        "deprecated_at": _iso(snapshot.deprecated_at),
        "retires_at": _iso(snapshot.retires_at),
        "retention_until": _iso(snapshot.retention_until),
        "successor": successor,
        "deprecation_url": deprecation_url,
        "successor_url": settings.SITE_URL + reverse("api:snapshot-detail", kwargs={"snapshot_id": successor})
        if successor
        else None,
    }


def _snapshots(names: set[str] | None = None) -> dict[str, dict[str, Any]]:
    qs = Snapshot.objects.filter(published_at__isnull=False).select_related("family", "replacement")
    if names is not None:
        qs = qs.filter(name__in=names)
    rows = list(qs)
    ids = {s.pk: s.name for s in rows}
    ids.update({s.replacement_id: s.replacement.name for s in rows if s.replacement_id})
    families = {s.family_id: s.family.slug for s in rows}
    return {s.name: _snapshot_entry(s, ids, families) for s in rows}


def _aliases(names: set[str] | None = None) -> dict[str, dict[str, Any]]:
    qs = Alias.objects.all()
    if names is not None:
        qs = qs.filter(name__in=names)
    return {
        name: {"family": family, "default": target}
        for name, family, target in qs.values_list("name", "family__slug", "target__name")
    }


def _pins(pairs: set[tuple[str, str]] | None = None, *, at: dt.datetime) -> dict[str, dict[str, Any]]:
    """org slug -> alias -> pin entry; with `pairs`, only those (org, alias) (missing ones: None)."""
    qs = Pin.objects.all()
    grants_qs = ExtendedSupport.objects.filter(starts_at__lte=at, until__gt=at)
    if pairs is not None:
        orgs = {org for org, _ in pairs}
        qs = qs.filter(organization__slug__in=orgs, alias__name__in={alias for _, alias in pairs})
        grants_qs = grants_qs.filter(organization__slug__in=orgs)
    grants: dict[tuple[int, int], dt.datetime] = {}
    for org_id, snapshot_id, until, retires_at in grants_qs.values_list(
        "organization_id", "snapshot_id", "until", "snapshot__retires_at"
    ):
        # A grant extends the snapshot's life: only a grant past its retirement changes the sunset.
        if retires_at is not None and until <= retires_at:
            continue
        grants[org_id, snapshot_id] = max(until, grants.get((org_id, snapshot_id), until))
    result: dict[str, dict[str, Any]] = defaultdict(dict)
    if pairs is not None:
        for org, alias in pairs:
            result[org][alias] = None
    # Pins without a grant share one entry object per (snapshot, policy): 50,000 pins, a few dozen dicts.
    shared: dict[tuple[str, str], dict[str, Any]] = {}
    rows = qs.values_list(
        "organization__slug", "alias__name", "snapshot__name", "policy", "organization_id", "snapshot_id"
    )
    for org, alias, snapshot, policy, org_id, snapshot_id in rows:
        if pairs is not None and (org, alias) not in pairs:
            continue
        until = grants.get((org_id, snapshot_id)) if grants else None
        if until is None:
            entry = shared.get((snapshot, policy))
            if entry is None:
                entry = shared[snapshot, policy] = {
                    "snapshot": snapshot,
                    "policy": policy,
                    "extended_support_until": None,
                }
        else:
            entry = {"snapshot": snapshot, "policy": policy, "extended_support_until": _iso(until)}
        result[org][alias] = entry
    return dict(result)


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class PinMapAnswer:
    revision: int
    body: bytes


_full_lock = threading.Lock()
_full: PinMapAnswer | None = None


def pin_map_full(*, revision: int | None = None) -> PinMapAnswer:
    """The whole map at `revision` (default: the current one), encoded once per revision."""
    global _full
    revision = pin_map_revision() if revision is None else revision
    cached = _full
    if cached is not None and cached.revision == revision:
        return cached
    with _full_lock:
        if _full is not None and _full.revision == revision:
            return _full
        key = f"pin-map:full:{revision}"
        body = cache.get(key)
        if body is None:
            now = timezone.now()
            # Read after the revision: the content is at least as new as the revision it is labelled with.
            document = {
                "version": PROTOCOL_VERSION,
                "revision": revision,
                "full": True,
                "generated_at": _iso(now),
                "snapshots": _snapshots(),
                "aliases": _aliases(),
                "pins": _pins(at=now),
            }
            body = _encode(document)
            cache.set(key, body, settings.PIN_MAP_CACHE_SECONDS)
        _full = PinMapAnswer(revision, body)
        return _full


def pin_map_check_since(*, since: int, revision: int) -> None:
    if since > revision:
        raise ApplicationError(
            f"since={since} is ahead of the current revision {revision}.",
            fields={"since": f"At most the current revision, {revision}."},
        )
    oldest = pin_map_oldest_since()
    if since < oldest:
        raise RevisionGone(
            f"The change log no longer reaches back to revision {since} (oldest: {oldest}); fetch the full map.",
            fields={"since": f"At least {oldest}; fetch the full map without `since`."},
        )


_deltas: dict[tuple[int, int], PinMapAnswer] = {}
DELTA_CACHE_ENTRIES = 256


def pin_map_delta(*, since: int, revision: int) -> PinMapAnswer:
    """What changed after `since` up to `revision`, built once per process for every gateway woken
    by the same change (they all ask for the same pair)."""
    key = (since, revision)
    answer = _deltas.get(key)
    if answer is None:
        answer = _pin_map_delta(since=since, revision=revision)
        if len(_deltas) >= DELTA_CACHE_ENTRIES:
            _deltas.clear()
        _deltas[key] = answer
    return answer


def _pin_map_delta(*, since: int, revision: int) -> PinMapAnswer:
    """What changed after `since` up to `revision`: each changed entry's current value, or null."""
    changes = PinMapChange.objects.filter(id__gt=since, id__lte=revision).values_list(
        "kind", "organization", "alias", "snapshot"
    )
    snapshots: set[str] = set()
    aliases: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for kind, org, alias, snapshot in changes:
        if kind == PinMapChangeKind.PIN:
            pairs.add((org, alias))
        elif kind == PinMapChangeKind.ALIAS:
            aliases.add(alias)
        else:
            snapshots.add(snapshot)
    now = timezone.now()
    document: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "revision": revision,
        "full": False,
        "since": since,
        "generated_at": _iso(now),
        "snapshots": {},
        "aliases": {},
        "pins": {},
    }
    if aliases:
        found = _aliases(aliases)
        document["aliases"] = {name: found.get(name) for name in sorted(aliases)}
    if pairs:
        document["pins"] = _pins(pairs, at=now)
    # Every snapshot a changed entry routes to travels with it, so a delta is never unroutable on
    # its own (a snapshot published outside the services would otherwise reach no gateway).
    routed = {entry["default"] for entry in document["aliases"].values() if entry}
    routed |= {pin["snapshot"] for pins in document["pins"].values() for pin in pins.values() if pin}
    if snapshots or routed:
        found = _snapshots(snapshots | routed)
        document["snapshots"] = {name: found.get(name) for name in sorted(snapshots)}
        document["snapshots"].update({name: found[name] for name in sorted(routed) if name in found})
    return PinMapAnswer(revision, _encode(document))


def parse_revision_params(params) -> tuple[int | None, int | None]:
    """(since, wait) from the query string; 400 naming the parameter when either is malformed."""

    def integer(name: str, limit: int | None) -> int | None:
        raw = params.get(name)
        if raw is None:
            return None
        if not raw.isdigit() or len(raw) > 18:
            raise ApplicationError(
                f"{name} must be a non-negative integer, not {raw[:40]!r}.",
                fields={name: "A non-negative integer."},
            )
        value = int(raw)
        if limit is not None and value > limit:
            raise ApplicationError(
                f"{name}={value} is more than {limit}.", fields={name: f"At most {limit} seconds."}
            )
        return value

    since = integer("since", None)
    wait = integer("wait", MAX_WAIT_SECONDS)
    if wait is not None and since is None:
        raise ApplicationError(
            "wait needs since: a long-poll waits for changes after a revision.",
            fields={"wait": "Only with since=<revision>."},
        )
    return since, wait


# --------------------------------------------------------------------------------------------
# Usage (what the gateways reported): the organisation's report, the dashboard, staff
# --------------------------------------------------------------------------------------------

CHART_DAYS = 30


@dataclass
class DeprecatedUse:
    """A deprecated or retiring snapshot an organisation still calls, and its way out."""

    snapshot: Snapshot
    status: str
    aliases: list[str]
    calls_7d: int
    calls_30d: int
    last_seen: dt.datetime
    days_to_retirement: int | None
    migration: Migration | None


def _lifecycle_q(prefix: str = "snapshot__") -> Q:
    return Q(**{f"{prefix}deprecated_at__isnull": False}) | Q(**{f"{prefix}retires_at__isnull": False})


def usage_deprecated(*, org: Organization, at: dt.datetime | None = None) -> list[DeprecatedUse]:
    """Every deprecated or retiring snapshot `org` called in the last 30 days, most urgent first."""
    at = at or timezone.now()
    recent = UsageHour.objects.filter(organization=org, hour__gte=at - dt.timedelta(days=30)).filter(
        _lifecycle_q()
    )
    totals = {
        row["snapshot_id"]: row
        for row in recent.values("snapshot_id").annotate(
            calls_30d=Sum("requests"),
            calls_7d=Sum("requests", filter=Q(hour__gte=at - dt.timedelta(days=7))),
            last=Max("hour"),
        )
    }
    if not totals:
        return []
    aliases: dict[int, set[str]] = defaultdict(set)
    for snapshot_id, alias in recent.values_list("snapshot_id", "alias__name").distinct():
        aliases[snapshot_id].add(alias)
    snapshots = Snapshot.objects.filter(pk__in=totals).select_related("family", "replacement")
    migrations = {
        m.from_snapshot_id: m
        for m in Migration.objects.filter(
            organization=org, from_snapshot_id__in=totals, state__in=OPEN_MIGRATION_STATES
        ).select_related("to_snapshot", "from_snapshot", "pin__alias")
    }
    result = []
    for snapshot in snapshots:
        row = totals[snapshot.pk]
        status = snapshot.status_at(at)
        if status not in ("deprecated", "retired", "purged") and snapshot.retires_at is None:
            continue
        result.append(
            DeprecatedUse(
                snapshot=snapshot,
                status=status,
                aliases=sorted(aliases[snapshot.pk]),
                calls_7d=row["calls_7d"] or 0,
                calls_30d=row["calls_30d"] or 0,
                last_seen=row["last"],
                days_to_retirement=(snapshot.retires_at - at).days if snapshot.retires_at else None,
                migration=migrations.get(snapshot.pk),
            )
        )
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(result, key=lambda use: (use.snapshot.retires_at or far, use.snapshot.name))


@dataclass
class UsageSeries:
    alias: str
    snapshot: str
    total: int
    daily: list[int]  # one count per day of the chart, oldest first


def usage_series(
    *, org: Organization, days: int = CHART_DAYS, at: dt.datetime | None = None
) -> tuple[list[dt.date], list[UsageSeries]]:
    """Requests per (alias, snapshot) per UTC day over the last `days` days (today included)."""
    at = at or timezone.now()
    first = (at - dt.timedelta(days=days - 1)).date()
    dates = [first + dt.timedelta(days=n) for n in range(days)]
    index = {day: n for n, day in enumerate(dates)}
    rows = (
        UsageHour.objects.filter(
            organization=org, hour__gte=dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
        )
        .annotate(day=TruncDate("hour", tzinfo=dt.UTC))
        .values_list("alias__name", "snapshot__name", "day")
        .annotate(requests=Sum("requests"))
    )
    series: dict[tuple[str, str], list[int]] = {}
    for alias, snapshot, day, requests in rows:
        if day in index:
            series.setdefault((alias, snapshot), [0] * days)[index[day]] += requests
    result = [UsageSeries(alias, snapshot, sum(daily), daily) for (alias, snapshot), daily in series.items()]
    return dates, sorted(result, key=lambda s: (s.alias, s.snapshot))


def usage_last_seen(*, org: Organization) -> dict[tuple[int, int], dt.datetime]:
    """(alias id, snapshot id) -> the last hour the organisation was served it (the dashboard)."""
    rows = (
        UsageHour.objects.filter(organization=org)
        .values("alias_id", "snapshot_id")
        .annotate(last=Max("hour"))
    )
    return {(row["alias_id"], row["snapshot_id"]): row["last"] for row in rows}


@dataclass
class SnapshotCaller:
    org_slug: str
    org_name: str
    calls_7d: int
    calls_30d: int
    last_seen: dt.datetime


def usage_callers(*, snapshot: Snapshot, at: dt.datetime | None = None) -> list[SnapshotCaller]:
    """Staff: which organisations called `snapshot` in the last 30 days and how much, most first."""
    at = at or timezone.now()
    rows = (
        UsageHour.objects.filter(snapshot=snapshot, hour__gte=at - dt.timedelta(days=30))
        .values("organization__slug", "organization__name")
        .annotate(
            calls_30d=Sum("requests"),
            calls_7d=Sum("requests", filter=Q(hour__gte=at - dt.timedelta(days=7))),
            last=Max("hour"),
        )
        .order_by("-calls_30d", "organization__slug")
    )
    return [
        SnapshotCaller(
            r["organization__slug"], r["organization__name"], r["calls_7d"] or 0, r["calls_30d"], r["last"]
        )
        for r in rows
    ]


@dataclass
class SnapshotUsage:
    snapshot: Snapshot
    status: str
    organizations: int
    calls_30d: int


def usage_lifecycle_snapshots(*, at: dt.datetime | None = None) -> list[SnapshotUsage]:
    """Staff: every deprecated or retiring snapshot with how many organisations still call it."""
    at = at or timezone.now()
    counts = {
        row["snapshot_id"]: row
        for row in UsageHour.objects.filter(hour__gte=at - dt.timedelta(days=30))
        .values("snapshot_id")
        .annotate(organizations=Count("organization_id", distinct=True), calls=Sum("requests"))
    }
    snapshots = (
        Snapshot.objects.filter(published_at__isnull=False).filter(_lifecycle_q("")).select_related("family")
    )
    result = [
        SnapshotUsage(
            snapshot=s,
            status=s.status_at(at),
            organizations=counts.get(s.pk, {}).get("organizations", 0),
            calls_30d=counts.get(s.pk, {}).get("calls", 0) or 0,
        )
        for s in snapshots
    ]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(result, key=lambda u: (u.snapshot.retires_at or far, u.snapshot.name))


def usage_recent_requests(
    *, org_id: int, snapshot_id: int, at: dt.datetime, days: int
) -> tuple[int, dt.datetime | None]:
    """(requests in the last `days` days, last hour seen) of one organisation on one snapshot."""
    row = UsageHour.objects.filter(
        organization_id=org_id, snapshot_id=snapshot_id, hour__gte=at - dt.timedelta(days=days)
    ).aggregate(requests=Sum("requests"), last=Max("hour"))
    return row["requests"] or 0, row["last"]


def usage_hours_many(
    *, pairs: set[tuple[int, int]], since: dt.datetime
) -> dict[tuple[int, int], list[tuple[dt.datetime, int]]]:
    """(organisation id, snapshot id) -> its usage hours since `since` as (hour, requests), for many
    pairs in one query (the batched notice sender computes each notice's recent use from these)."""
    found: dict[tuple[int, int], list[tuple[dt.datetime, int]]] = defaultdict(list)
    if not pairs:
        return found
    rows = UsageHour.objects.filter(
        organization_id__in={org_id for org_id, _ in pairs},
        snapshot_id__in={snapshot_id for _, snapshot_id in pairs},
        hour__gte=since,
    ).values_list("organization_id", "snapshot_id", "hour", "requests")
    for org_id, snapshot_id, hour, requests in rows:
        if (org_id, snapshot_id) in pairs:
            found[(org_id, snapshot_id)].append((hour, requests))
    return found


def pin_map_forget() -> None:
    """Drop this process's copies of built maps (tests; after restoring the database from a backup,
    restart the processes and clear the cache: revisions then repeat)."""
    global _full
    _full = None
    _deltas.clear()
