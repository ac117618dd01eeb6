"""Writes of the catalog, tenancy and pins. Views, the API, the admin, tasks and commands call these."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from contracts.auth import api_key_cache_key
from contracts.models import (
    Alias,
    AliasMove,
    ApiKey,
    ApiKeyScope,
    ModelFamily,
    Organization,
    Pin,
    PinChange,
    Snapshot,
    UpgradePolicy,
)
from portal.exceptions import ApplicationError, Conflict

IMMUTABLE_SNAPSHOT_FIELDS = ("digest", "config")
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------------------------
# Resolve cache: a generation counter bumped by every catalog change, plus per-pin deletes.
# --------------------------------------------------------------------------------------------

RESOLVE_GENERATION_KEY = "resolve:generation"


def resolve_generation() -> int:
    generation = cache.get(RESOLVE_GENERATION_KEY)
    if generation is None:
        generation = int(timezone.now().timestamp() * 1000)
        cache.add(RESOLVE_GENERATION_KEY, generation, None)
        generation = cache.get(RESOLVE_GENERATION_KEY, generation)
    return generation


def resolve_cache_key(*, org_id: int, alias_name: str, generation: int | None = None) -> str:
    generation = resolve_generation() if generation is None else generation
    return f"resolve:{generation}:{org_id}:{alias_name}"


def _bump_generation() -> None:
    try:
        cache.incr(RESOLVE_GENERATION_KEY)
    except ValueError:
        cache.set(RESOLVE_GENERATION_KEY, int(timezone.now().timestamp() * 1000), None)


def resolve_cache_invalidate_all() -> None:
    """After any catalog change: every cached resolution becomes unreachable at once.

    Invalidated now and again after commit: a reader that cached the old state in between is
    cleared by the second pass.
    """
    _bump_generation()
    transaction.on_commit(_bump_generation)


def resolve_cache_invalidate_pin(*, org_id: int, alias_name: str) -> None:
    """A pin changed. Pins change rarely next to how often they are resolved, so this bumps the one
    generation every process checks (contracts.hotpath keeps per-process copies keyed by it)."""
    resolve_cache_invalidate_all()


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


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
    resolve_cache_invalidate_all()
    return current


@transaction.atomic
def alias_create(
    *,
    name: str,
    family: ModelFamily,
    target: Snapshot,
    actor: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
    description: str = "",
) -> Alias:
    at = at or timezone.now()
    if target.family_id != family.pk:
        raise ApplicationError(
            f"{target.name} is not a snapshot of the {family.slug} family.", fields={"target": "Wrong family."}
        )
    alias = Alias.objects.create(name=name, family=family, target=target, created_at=at, description=description)
    AliasMove.objects.create(
        alias=alias, from_snapshot=None, to_snapshot=target, moved_at=at, reason="created", actor=actor
    )
    resolve_cache_invalidate_all()
    return alias


@transaction.atomic
def alias_move(
    *,
    alias: Alias,
    to_snapshot: Snapshot,
    reason: str,
    actor: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> AliasMove:
    """Move an alias's default. `follow` pins move with it; the others are offered a migration."""
    at = at or timezone.now()
    alias = Alias.objects.select_for_update().get(pk=alias.pk)
    if to_snapshot.family_id != alias.family_id:
        raise ApplicationError(
            f"{to_snapshot.name} is not in the {alias.family.slug} family of {alias.name}.",
            fields={"to_snapshot": "Must be a snapshot of the alias's family."},
        )
    if not to_snapshot.is_published:
        raise ApplicationError(
            f"{to_snapshot.name} is not published.", fields={"to_snapshot": "Publish it first."}
        )
    if to_snapshot.pk == alias.target_id:
        raise Conflict(f"{alias.name} already points at {to_snapshot.name}.", fields={"to_snapshot": "Unchanged."})
    move = AliasMove.objects.create(
        alias=alias, from_snapshot=alias.target, to_snapshot=to_snapshot, moved_at=at, reason=reason, actor=actor
    )
    alias.target = to_snapshot
    alias.save(update_fields=["target"])
    for pin in Pin.objects.select_for_update().filter(alias=alias).select_related("organization"):
        if pin.policy == UpgradePolicy.FOLLOW and pin.snapshot_id != to_snapshot.pk:
            pin_set(
                organization=pin.organization,
                alias=alias,
                snapshot=to_snapshot,
                actor=actor,
                reason=f"alias {alias.name} moved: {reason}",
                at=at,
            )
    from contracts.consent.services import migrations_propose_for_alias_move

    migrations_propose_for_alias_move(alias=alias, to_snapshot=to_snapshot, actor=actor, now=at)
    resolve_cache_invalidate_all()
    return move


@transaction.atomic
def snapshot_lifecycle_set(
    *,
    snapshot: Snapshot,
    deprecated_at: dt.datetime | None,
    retires_at: dt.datetime | None,
    retention_until: dt.datetime | None,
    replacement: Snapshot | None,
    actor: AbstractBaseUser | None = None,
    now: dt.datetime | None = None,
) -> Snapshot:
    """Set a snapshot's lifecycle dates and replacement (staff), under the CONTRACT GUARD.

    An earlier (or first) retirement date must leave every organisation pinned to the snapshot at
    least the min_notice_days of its accepted terms; otherwise nothing changes and the refusal lists
    each such organisation with its earliest lawful date. Deprecating offers the replacement to
    manual / on-retirement pins, and open migrations away from the snapshot take the new deadline.
    """
    from contracts.consent.selectors import terms_in_force
    from contracts.consent.services import migrations_propose_for_deprecation
    from contracts.models import OPEN_MIGRATION_STATES, Migration

    now = now or timezone.now()
    current = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
    if retires_at is not None and (current.retires_at is None or retires_at < current.retires_at):
        orgs = Organization.objects.filter(pins__snapshot=current).distinct().order_by("slug")
        violations = {}
        for org in orgs.select_related("accepted_terms"):
            terms = terms_in_force(org=org, at=now)
            earliest = now + dt.timedelta(days=terms.min_notice_days)
            if retires_at < earliest:
                violations[org.slug] = earliest.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        if violations:
            listing = "; ".join(f"{slug}: not before {date}" for slug, date in violations.items())
            raise Conflict(
                f"Retiring {current.name} at {retires_at.isoformat()} gives too little notice under the "
                f"accepted terms of {len(violations)} organisation(s): {listing}.",
                fields={"retires_at": listing, "organizations": violations},
                code="contract_guard",
            )
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
        migrations_propose_for_deprecation(snapshot=updated, actor=actor, now=now)
    return updated


# --------------------------------------------------------------------------------------------
# Pins
# --------------------------------------------------------------------------------------------


@transaction.atomic
def pin_set(
    *,
    organization: Organization,
    alias: Alias,
    snapshot: Snapshot,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    policy: str | None = None,
    at: dt.datetime | None = None,
) -> Pin:
    """Point an organisation's pin for an alias at a snapshot (creating the pin if needed)."""
    at = at or timezone.now()
    if snapshot.family_id != alias.family_id:
        raise ApplicationError(
            f"{snapshot.name} is not in the {alias.family.slug} family of {alias.name}.",
            fields={"snapshot": "Must be a snapshot of the alias's family."},
        )
    if not snapshot.is_published:
        raise ApplicationError(f"{snapshot.name} is not published.", fields={"snapshot": "Not published."})
    if policy is not None and policy not in UpgradePolicy.values:
        raise ApplicationError(
            f"Unknown upgrade policy {policy!r}.",
            fields={"policy": f"One of: {', '.join(UpgradePolicy.values)}."},
        )
    pin = Pin.objects.select_for_update().filter(organization=organization, alias=alias).first()
    if pin is None:
        pin = Pin.objects.create(
            organization=organization,
            alias=alias,
            snapshot=snapshot,
            policy=policy or UpgradePolicy.MANUAL,
            created_at=at,
            updated_at=at,
        )
        from_snapshot, from_policy = None, ""
    else:
        from_snapshot, from_policy = pin.snapshot, pin.policy
        if pin.snapshot_id == snapshot.pk and (policy is None or policy == pin.policy):
            return pin
        pin.snapshot = snapshot
        pin.policy = policy or pin.policy
        pin.updated_at = at
        pin.save(update_fields=["snapshot", "policy", "updated_at"])
    PinChange.objects.create(
        pin=pin,
        organization=organization,
        alias=alias,
        from_snapshot=from_snapshot,
        to_snapshot=snapshot,
        from_policy=from_policy,
        to_policy=pin.policy,
        changed_at=at,
        reason=reason,
        actor=actor,
    )
    resolve_cache_invalidate_pin(org_id=organization.pk, alias_name=alias.name)
    return pin


@transaction.atomic
def pin_policy_change(
    *, pin: Pin, policy: str, actor: AbstractBaseUser | None = None, at: dt.datetime | None = None
) -> Pin:
    """Change how a pin may move; recorded as a PinChange with the actor."""
    if policy not in UpgradePolicy.values:
        raise ApplicationError(
            f"Unknown upgrade policy {policy!r}.",
            fields={"policy": f"One of: {', '.join(UpgradePolicy.values)}."},
        )
    at = at or timezone.now()
    pin = Pin.objects.select_for_update().select_related("alias", "organization").get(pk=pin.pk)
    if pin.policy == policy:
        return pin
    from_policy = pin.policy
    pin.policy = policy
    pin.updated_at = at
    pin.save(update_fields=["policy", "updated_at"])
    PinChange.objects.create(
        pin=pin,
        organization=pin.organization,
        alias=pin.alias,
        from_snapshot=pin.snapshot,
        to_snapshot=pin.snapshot,
        from_policy=from_policy,
        to_policy=policy,
        changed_at=at,
        reason="policy changed",
        actor=actor,
    )
    resolve_cache_invalidate_pin(org_id=pin.organization_id, alias_name=pin.alias.name)
    return pin


# --------------------------------------------------------------------------------------------
# API keys
# --------------------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *,
    organization: Organization | None,
    name: str,
    actor: AbstractBaseUser | None = None,
    scope: str = ApiKeyScope.ORGANIZATION,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored and shown only now."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError("A key needs a name of 1 to 100 characters.", fields={"name": "1 to 100 characters."})
    if scope == ApiKeyScope.ORGANIZATION and organization is None:
        raise ApplicationError("An organisation key needs an organisation.", fields={"organization": "Required."})
    raw = raw_key or settings.API_KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = raw[: len(settings.API_KEY_PREFIX) + 8]
    key = ApiKey.objects.create(
        organization=organization,
        scope=scope,
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash_key(raw),
        created_by=actor,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: AbstractBaseUser | None = None) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    cache_key = api_key_cache_key(api_key.key_hash)
    cache.delete(cache_key)
    transaction.on_commit(lambda: cache.delete(cache_key))
    # Processes keep copies of key identities keyed by the generation (contracts.hotpath).
    resolve_cache_invalidate_all()
    return api_key
