"""The pin map's change log: every write that changes an answer of GET /api/v1/gateway/pin-map/
appends here, in its own transaction; the entry's id is the map's new revision.

Revisions must become visible in order: a gateway that has seen revision 11 never asks again for
what lies below it, so revision 10 must not commit after 11. On PostgreSQL every appending
transaction first takes one transaction-scoped advisory lock (held until it commits), so ids are
taken, and committed, one transaction after the other; SQLite serialises writers anyway. The lock is
taken at the first append of a transaction, which is the last thing most services write.

Wake-ups: on PostgreSQL the append also issues `NOTIFY vcp_pin_map` (delivered only if the
transaction commits); after commit the writing process wakes its own waiters and, with Redis,
publishes on the `vcp:pin-map` channel (contracts.gateway.wakeup listens to whichever is in use).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from contracts.gateway import wakeup
from contracts.models import PinMapChange, PinMapChangeKind

# pg_advisory_xact_lock key of the change log: any fixed 64-bit number, unique in this database.
ADVISORY_LOCK_KEY = 0x7663_705F_6D61_70  # "vcp_map"


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def pin_map_record(
    *,
    kind: str,
    cause: str,
    org_slug: str = "",
    alias: str = "",
    snapshot: str = "",
) -> PinMapChange:
    """Append one change (call inside the writing transaction). Returns it; its id is the revision.

    `created_at` is the wall-clock time of the append (what retention counts from), not the business
    instant of the write, which may lie in the past (back-dated seeds, scheduled applications)."""
    if kind not in PinMapChangeKind.values:
        raise ValueError(f"unknown pin map change kind {kind!r}")
    with transaction.atomic():
        if _postgres():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        change = PinMapChange.objects.create(
            kind=kind,
            organization=org_slug,
            alias=alias,
            snapshot=snapshot,
            cause=cause[:64],
            created_at=timezone.now(),
        )
        if _postgres():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [wakeup.PG_CHANNEL, str(change.pk)])
    revision = change.pk
    transaction.on_commit(lambda: wakeup.announce(revision))
    return change


def pin_map_revision() -> int:
    """The current revision: the newest change's id (0 before the first change)."""
    return PinMapChange.objects.aggregate(revision=Max("id"))["revision"] or 0


def pin_map_oldest_since() -> int:
    """The oldest `since` a delta can still answer: every change after it is still in the log."""
    oldest = PinMapChange.objects.aggregate(oldest=Min("id"))["oldest"]
    return 0 if oldest is None else oldest - 1


def pin_map_changes_prune(*, at: dt.datetime | None = None) -> int:
    """Delete changes older than PIN_MAP_CHANGE_RETENTION_DAYS, always keeping the newest one (it
    holds the current revision). Gateways further behind get 410 and fetch the full map."""
    at = at or timezone.now()
    cutoff = at - dt.timedelta(days=settings.PIN_MAP_CHANGE_RETENTION_DAYS)
    with transaction.atomic():
        newest = pin_map_revision()
        if _postgres():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL vcp.pin_map_prune = 'on'")
        doomed = PinMapChange.objects.filter(created_at__lt=cutoff, id__lt=newest)
        return doomed._raw_delete(doomed.db)
