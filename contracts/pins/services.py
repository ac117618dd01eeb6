"""Writes of pins: setting the snapshot an organisation is served and changing its upgrade policy."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.catalog.rules import move_target_check
from contracts.errors import ApplicationError
from contracts.gateway.changelog import pin_map_record
from contracts.instants import instant_words
from contracts.ledger.chain import ledger_append
from contracts.models import (
    Alias,
    AuditAction,
    LedgerAction,
    Organization,
    Pin,
    PinChange,
    PinMapChangeKind,
    Snapshot,
    UpgradePolicy,
)
from contracts.outbox import organization_mail_send
from contracts.pins.cache import resolve_cache_invalidate_pin

# Moves that no migration decision records: the pin service writes their ledger record and notice.
MOVE_HEADLINES = {
    LedgerAction.FOLLOW: "{alias} now serves {to}: your pin followed the alias",
    LedgerAction.STAFF_MOVE: "{alias} now serves {to}: the vendor moved your pin",
}


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
    ledger_action: str | None = None,
) -> Pin:
    """Point an organisation's pin for an alias at a snapshot (creating the pin if needed).

    The target must pass the lifecycle rules (catalog.rules). A move that no migration decision
    records (a follow-policy pin moving with its alias, a vendor's correction) names its
    `ledger_action`: the move then appends that record to the organisation's ledger and queues one
    notice to the organisation.
    """
    at = at or timezone.now()
    if policy is not None and policy not in UpgradePolicy.values:
        raise ApplicationError(
            f"Unknown upgrade policy {policy!r}.",
            fields={"policy": f"One of: {', '.join(UpgradePolicy.values)}."},
        )
    pin = Pin.objects.select_for_update().filter(organization=org, alias=alias).first()
    if pin is None or pin.snapshot_id != snapshot.pk:
        move_target_check(snapshot=snapshot, family=alias.family_id, at=at, field="snapshot", org=org)
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
    if ledger_action is not None and from_snapshot is not None and from_snapshot.pk != snapshot.pk:
        _move_record(
            org=org,
            alias=alias,
            from_snapshot=from_snapshot,
            to_snapshot=snapshot,
            policy=pin.policy,
            action=ledger_action,
            reason=reason,
            acting_user=acting_user,
            at=at,
        )
    resolve_cache_invalidate_pin(org_id=org.pk, alias_name=alias.name)
    return pin


def _move_record(
    *,
    org: Organization,
    alias: Alias,
    from_snapshot: Snapshot,
    to_snapshot: Snapshot,
    policy: str,
    action: str,
    reason: str,
    acting_user: AbstractBaseUser | None,
    at: dt.datetime,
) -> None:
    """The ledger record (a system action: the organisation's policy or the vendor moved the pin)
    and the one notice of a move that no migration decision recorded."""
    initiated_by = (
        (getattr(acting_user, "email", "") or acting_user.get_username()) if acting_user else "system"
    )
    record = ledger_append(
        org=org,
        action=action,
        actor_email="system",
        from_snapshot=from_snapshot.name,
        to_snapshot=to_snapshot.name,
        details={"alias": alias.name, "policy": policy, "reason": reason, "initiated_by": initiated_by},
        at=at,
    )
    headline = MOVE_HEADLINES.get(action, "{alias} now serves {to}").format(
        alias=alias.name, to=to_snapshot.name
    )
    body = (
        f"Your pin for {alias.name} moved from {from_snapshot.name} to {to_snapshot.name} "
        f"on {instant_words(at)}.\n"
        f"Why: {reason or LedgerAction(action).label}.\n"
        f"Upgrade policy of this pin: {UpgradePolicy(policy).label}.\n"
        f"This move is record #{record.seq} of your consent ledger."
    )
    organization_mail_send(
        org=org,
        kind="pin-moved",
        subject=headline,
        body=body,
        dedupe_key=f"pin-moved:{record.seq}",
        webhook_event="pin.moved",
        webhook_data={
            "alias": alias.name,
            "from": from_snapshot.name,
            "to": to_snapshot.name,
            "reason": action,
            "ledger_seq": record.seq,
            "moved_at": at.isoformat(),
        },
    )


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
