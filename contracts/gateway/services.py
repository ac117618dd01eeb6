"""Writes of the data plane: gateways and their keys, receipt keys, usage ingestion, and the change
log entries that time alone makes due (extended-support grants ending)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from contracts.errors import ApplicationError, Conflict
from contracts.gateway.auth import gateway_cache_key
from contracts.gateway.changelog import pin_map_record
from contracts.instants import parse_instant
from contracts.models import (
    Alias,
    ExtendedSupport,
    Gateway,
    GatewayReceiptKey,
    Organization,
    Pin,
    PinMapChange,
    PinMapChangeKind,
    Snapshot,
    UsageBatch,
)

NAME_RE = re.compile(r"^[-a-zA-Z0-9_]{1,100}$")
KEY_ID_RE = re.compile(r"^gw-[0-9a-f]{16}$")
MAX_USAGE_ROWS = 10_000
MAX_BATCH_ID_CHARS = 64
HOUR_AHEAD = dt.timedelta(hours=1)
# Batches this large are loaded with COPY into a temporary table on PostgreSQL; smaller ones with
# one multi-row INSERT … ON CONFLICT (a temporary table costs more than it saves below this).
COPY_FROM_ROWS = 500


# --------------------------------------------------------------------------------------------
# Gateways and their bearer keys
# --------------------------------------------------------------------------------------------


@transaction.atomic
def gateway_create(
    *, name: str, acting_user: AbstractBaseUser | None = None, raw_key: str | None = None
) -> tuple[Gateway, str]:
    """A new gateway and its bearer key, which is shown only now (stored as sha256)."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ApplicationError(
            "A gateway name is 1 to 100 letters, digits, '-' or '_'.",
            fields={"name": "1 to 100 of [-a-zA-Z0-9_]."},
        )
    if Gateway.objects.filter(name=name).exists():
        raise Conflict(f"A gateway named {name!r} already exists.", fields={"name": "Already taken."})
    raw = raw_key or settings.GATEWAY_KEY_PREFIX + secrets.token_urlsafe(32)
    gateway = Gateway.objects.create(
        name=name,
        prefix=raw[: len(settings.GATEWAY_KEY_PREFIX) + 8],
        key_hash=Gateway.hash_key(raw),
        created_by=acting_user,
    )
    return gateway, raw


@transaction.atomic
def gateway_revoke(*, gateway: Gateway, at: dt.datetime | None = None) -> Gateway:
    """Revoke a gateway: its bearer key stops working at once, and its receipt keys are revoked too
    (receipts they signed before now keep verifying; later ones do not)."""
    at = at or timezone.now()
    gateway = Gateway.objects.select_for_update().get(pk=gateway.pk)
    if gateway.revoked_at is None:
        gateway.revoked_at = at
        gateway.save(update_fields=["revoked_at"])
    GatewayReceiptKey.objects.filter(gateway=gateway, revoked_at__isnull=True).update(revoked_at=at)
    key = gateway_cache_key(gateway.key_hash)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))
    return gateway


def gateway_touch(*, gateway_id: int) -> None:
    """Record a gateway's last use, at most once a minute across processes."""
    if cache.add(f"gateway-touch:{gateway_id}", 1, settings.API_KEY_TOUCH_SECONDS):
        Gateway.objects.filter(pk=gateway_id).update(last_used_at=timezone.now())


# --------------------------------------------------------------------------------------------
# Receipt keys
# --------------------------------------------------------------------------------------------


def _key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "gw-" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Registration:
    key: GatewayReceiptKey
    created: bool


@transaction.atomic
def receipt_key_register(*, gateway: Gateway, key_id: str, public_key_pem: str) -> Registration:
    """Register a gateway's Ed25519 receipt key. The same key again: no change (created False);
    the same key id with another key, another gateway's key id, or a revoked key id: 409."""
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise ApplicationError(
            "key_id must be 'gw-' and 16 lowercase hex digits.", fields={"key_id": "gw-<16 hex digits>."}
        )
    try:
        public_key = serialization.load_pem_public_key(public_key_pem.encode())
    except (ValueError, TypeError, AttributeError) as exc:
        raise ApplicationError(
            "public_key is not a PEM public key.", fields={"public_key": "PEM (SubjectPublicKeyInfo)."}
        ) from exc
    if not isinstance(public_key, Ed25519PublicKey):
        raise ApplicationError(
            "public_key must be an Ed25519 key.",
            fields={"public_key": f"Ed25519, not {type(public_key).__name__}."},
        )
    expected = _key_id_of(public_key)
    if key_id != expected:
        raise ApplicationError(
            f"key_id {key_id} does not match the key (its id is {expected}).",
            fields={"key_id": f"The key's id is {expected}."},
        )
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    existing = GatewayReceiptKey.objects.select_for_update().filter(key_id=key_id).first()
    if existing is not None:
        if existing.gateway_id != gateway.pk:
            raise Conflict(f"Receipt key {key_id} belongs to another gateway.", fields={"key_id": "Taken."})
        if existing.revoked_at is not None:
            raise Conflict(
                f"Receipt key {key_id} was revoked at {existing.revoked_at.isoformat()}; generate a new key.",
                fields={"key_id": "Revoked."},
            )
        if existing.public_key_pem != pem:
            raise Conflict(
                f"Receipt key {key_id} is registered with another key.", fields={"key_id": "Taken."}
            )
        return Registration(existing, False)
    try:
        with transaction.atomic():
            key = GatewayReceiptKey.objects.create(gateway=gateway, key_id=key_id, public_key_pem=pem)
    except IntegrityError as exc:  # registered concurrently
        raise Conflict(f"Receipt key {key_id} was just registered.", fields={"key_id": "Taken."}) from exc
    return Registration(key, True)


@transaction.atomic
def receipt_key_revoke(*, key: GatewayReceiptKey, at: dt.datetime | None = None) -> GatewayReceiptKey:
    """Receipts signed under this key id after now stop verifying."""
    at = at or timezone.now()
    key = GatewayReceiptKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = at
        key.save(update_fields=["revoked_at"])
    return key


def receipt_public_key(key_id: str) -> tuple[Ed25519PublicKey, GatewayReceiptKey] | None:
    key = GatewayReceiptKey.objects.select_related("gateway").filter(key_id=key_id).first()
    if key is None:
        return None
    return serialization.load_pem_public_key(key.public_key_pem.encode()), key


def signature_valid(public_key: Ed25519PublicKey, payload: bytes, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), payload)
    except Exception:  # InvalidSignature, or not base64
        return False
    return True


# --------------------------------------------------------------------------------------------
# Usage ingestion
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageIngest:
    batch_id: str
    rows: int
    duplicate: bool


def _refuse_row(index: int, field: str, message: str) -> ApplicationError:
    return ApplicationError(f"rows[{index}].{field}: {message}", fields={f"rows[{index}].{field}": message})


def _validated(rows: Any, *, at: dt.datetime) -> dict[tuple[int, int, int, dt.datetime], int]:
    """(org id, alias id, snapshot id, hour) -> requests summed, or the refusal naming the first bad row."""
    if not isinstance(rows, list) or not rows:
        raise ApplicationError("rows must be a non-empty list.", fields={"rows": "A non-empty list."})
    if len(rows) > MAX_USAGE_ROWS:
        raise ApplicationError(
            f"A batch holds at most {MAX_USAGE_ROWS} rows, not {len(rows)}.",
            fields={"rows": f"At most {MAX_USAGE_ROWS} rows."},
        )
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _refuse_row(index, "org", "Each row is an object.")
        for field in ("org", "alias", "snapshot", "hour"):
            if not isinstance(row.get(field), str) or not row[field]:
                raise _refuse_row(index, field, "Required (a non-empty string).")
    orgs = dict(Organization.objects.filter(slug__in={r["org"] for r in rows}).values_list("slug", "id"))
    aliases = {
        name: (pk, family)
        for name, pk, family in Alias.objects.filter(name__in={r["alias"] for r in rows}).values_list(
            "name", "id", "family_id"
        )
    }
    snapshots = {
        name: (pk, family)
        for name, pk, family in Snapshot.objects.filter(
            name__in={r["snapshot"] for r in rows}, published_at__isnull=False
        ).values_list("name", "id", "family_id")
    }
    latest = at + HOUR_AHEAD
    totals: dict[tuple[int, int, int, dt.datetime], int] = defaultdict(int)
    hours: dict[str, dt.datetime] = {}
    for index, row in enumerate(rows):
        org_id = orgs.get(row["org"])
        if org_id is None:
            raise _refuse_row(index, "org", f"Unknown organisation {row['org'][:64]!r}.")
        alias = aliases.get(row["alias"])
        if alias is None:
            raise _refuse_row(index, "alias", f"Unknown alias {row['alias'][:100]!r}.")
        snapshot = snapshots.get(row["snapshot"])
        if snapshot is None:
            raise _refuse_row(index, "snapshot", f"Unknown snapshot {row['snapshot'][:100]!r}.")
        if snapshot[1] != alias[1]:
            raise _refuse_row(index, "snapshot", f"{row['snapshot']} is not in the family of {row['alias']}.")
        requests = row.get("requests")
        if not isinstance(requests, int) or isinstance(requests, bool):
            raise _refuse_row(index, "requests", "An integer.")
        if requests < 0:
            raise _refuse_row(index, "requests", f"Must not be negative (got {requests}).")
        if requests > 2**53:
            raise _refuse_row(index, "requests", "Too large.")
        hour = hours.get(row["hour"])
        if hour is None:
            try:
                hour = parse_instant(row["hour"], field=f"rows[{index}].hour")
            except ApplicationError as exc:
                raise _refuse_row(index, "hour", "An ISO 8601 instant with a time zone.") from exc
            if hour.minute or hour.second or hour.microsecond or hour.utcoffset().total_seconds() % 3600:
                raise _refuse_row(index, "hour", "The start of a UTC hour, e.g. 2026-12-02T08:00:00Z.")
            hour = hour.astimezone(dt.UTC)
            if hour > latest:
                raise _refuse_row(
                    index, "hour", f"More than one hour ahead of the portal's clock ({at.isoformat()})."
                )
            hours[row["hour"]] = hour
        totals[org_id, alias[0], snapshot[0], hour] += requests
    return totals


_UPSERT = (
    "INSERT INTO contracts_usagehour (organization_id, alias_id, snapshot_id, hour, requests) VALUES {values} "
    "ON CONFLICT (organization_id, alias_id, snapshot_id, hour) "
    "DO UPDATE SET requests = contracts_usagehour.requests + excluded.requests"
)


def _upsert(totals: dict[tuple[int, int, int, dt.datetime], int]) -> None:
    items = list(totals.items())
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(items) >= COPY_FROM_ROWS:
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS usage_load (organization_id bigint, alias_id bigint, "
                "snapshot_id bigint, hour timestamptz, requests bigint) ON COMMIT DELETE ROWS"
            )
            with cursor.copy(
                "COPY usage_load (organization_id, alias_id, snapshot_id, hour, requests) FROM STDIN"
            ) as copy:
                for (org_id, alias_id, snapshot_id, hour), requests in items:
                    copy.write_row((org_id, alias_id, snapshot_id, hour, requests))
            cursor.execute(
                "INSERT INTO contracts_usagehour (organization_id, alias_id, snapshot_id, hour, requests) "
                "SELECT organization_id, alias_id, snapshot_id, hour, requests FROM usage_load "
                "ON CONFLICT (organization_id, alias_id, snapshot_id, hour) "
                "DO UPDATE SET requests = contracts_usagehour.requests + excluded.requests"
            )
            return
        step = 150  # 5 parameters a row: well under SQLite's 999-variable limit on old builds
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            params: list[Any] = []
            for (org_id, alias_id, snapshot_id, hour), requests in chunk:
                params += [org_id, alias_id, snapshot_id, hour, requests]
            cursor.execute(_UPSERT.format(values=", ".join(["(%s, %s, %s, %s, %s)"] * len(chunk))), params)


@transaction.atomic
def usage_ingest(
    *, gateway: Gateway, batch_id: Any, rows: Any, dropped: Any = 0, at: dt.datetime | None = None
) -> UsageIngest:
    """Add one batch of hourly counts to the rollups, all or nothing, once per batch id.

    Refused whole (400, naming the row) for an unknown organisation, alias or snapshot, a negative
    count, or an hour more than one hour ahead; a replayed batch id changes nothing."""
    at = at or timezone.now()
    if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= MAX_BATCH_ID_CHARS or "\x00" in batch_id:
        raise ApplicationError(
            f"batch_id must be 1 to {MAX_BATCH_ID_CHARS} characters.",
            fields={"batch_id": f"1 to {MAX_BATCH_ID_CHARS} characters."},
        )
    if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
        raise ApplicationError(
            "dropped must be a non-negative integer.", fields={"dropped": "An integer ≥ 0."}
        )
    if UsageBatch.objects.filter(gateway=gateway, batch_id=batch_id).exists():
        return UsageIngest(batch_id, 0, True)
    totals = _validated(rows, at=at)
    try:
        with transaction.atomic():
            UsageBatch.objects.create(
                gateway=gateway,
                batch_id=batch_id,
                rows=len(rows),
                requests=sum(totals.values()),
                dropped=dropped,
                received_at=at,
            )
    except IntegrityError:  # the same batch delivered concurrently: the other delivery counts it
        return UsageIngest(batch_id, 0, True)
    _upsert(totals)
    return UsageIngest(batch_id, len(rows), False)


# --------------------------------------------------------------------------------------------
# Change-log entries due by time
# --------------------------------------------------------------------------------------------


def grant_end_cause(grant_id: int) -> str:
    return f"extended-support-ended:{grant_id}"


@transaction.atomic
def pin_map_grants_expire(*, at: dt.datetime | None = None) -> int:
    """Record, once, each extended-support grant that ran out by time (its `until` passed).

    Gateways already stop treating the snapshot as supported at `until` on their own (the map carries
    the instant), so this entry only brings the map back to what resolve/ answers: the grant is
    gone from the pin. Looks back over the change log's retention, so a beat that was down catches up.
    """
    at = at or timezone.now()
    since = at - dt.timedelta(days=settings.PIN_MAP_CHANGE_RETENTION_DAYS)
    ended = list(
        ExtendedSupport.objects.filter(until__lte=at, until__gt=since).values_list(
            "id", "organization_id", "organization__slug", "snapshot_id"
        )
    )
    if not ended:
        return 0
    done = set(
        PinMapChange.objects.filter(cause__in=[grant_end_cause(g[0]) for g in ended]).values_list(
            "cause", flat=True
        )
    )
    recorded = 0
    for grant_id, org_id, org_slug, snapshot_id in ended:
        cause = grant_end_cause(grant_id)
        if cause in done:
            continue
        aliases = list(
            Pin.objects.filter(organization_id=org_id, snapshot_id=snapshot_id).values_list(
                "alias__name", flat=True
            )
        )
        for alias in aliases:  # no pin on it any more: nothing in the map to change
            pin_map_record(kind=PinMapChangeKind.PIN, cause=cause, org_slug=org_slug, alias=alias)
        recorded += bool(aliases)
    return recorded
