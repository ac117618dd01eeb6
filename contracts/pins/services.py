"""Writes of pins: setting the snapshot an organisation is served and changing its upgrade policy."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.errors import ApplicationError
from contracts.gateway.changelog import pin_map_record
from contracts.models import (
    Alias,
    AuditAction,
    Organization,
    Pin,
    PinChange,
    PinMapChangeKind,
    Snapshot,
    UpgradePolicy,
)
from contracts.pins.cache import resolve_cache_invalidate_pin


@transaction.atomic
def pin_set(
    *,
    org: Organization,
    alias: Alias,
    snapshot: Snapshot,
    acting_user: AbstractBaseUser | None = None,
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
    pin = Pin.objects.select_for_update().filter(organization=org, alias=alias).first()
    if pin is None:
        pin = Pin.objects.create(
            organization=org,
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
        organization=org,
        alias=alias,
        from_snapshot=from_snapshot,
        to_snapshot=snapshot,
        from_policy=from_policy,
        to_policy=pin.policy,
        changed_at=at,
        reason=reason,
        actor=acting_user,
    )
    pin_map_record(kind=PinMapChangeKind.PIN, cause="pin-set", org_slug=org.slug, alias=alias.name)
    resolve_cache_invalidate_pin(org_id=org.pk, alias_name=alias.name)
    return pin


@transaction.atomic
def pin_policy_change(
    *, pin: Pin, policy: str, acting_user: AbstractBaseUser | None = None, at: dt.datetime | None = None
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
        actor=acting_user if getattr(acting_user, "pk", None) else None,
    )
    audit_record(
        org=pin.organization,
        action=AuditAction.PIN_POLICY_CHANGE,
        target_type="pin",
        target_id=pin.pk,
        target_label=pin.alias.name,
        before={"policy": from_policy},
        after={"policy": policy},
        acting_user=acting_user,
        at=at,
    )
    pin_map_record(
        kind=PinMapChangeKind.PIN,
        cause="pin-policy",
        org_slug=pin.organization.slug,
        alias=pin.alias.name,
    )
    resolve_cache_invalidate_pin(org_id=pin.organization_id, alias_name=pin.alias.name)
    return pin
