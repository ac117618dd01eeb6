"""The consent ledger's hash chain: appending a record and signing the chain head."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from contracts import signing
from contracts.canonical import canonical_json
from contracts.models import ConsentRecord, LedgerHead, Migration, Organization

GENESIS_HASH = "0" * 64


# The fields the hash covers, in the order exports list them.
HASHED_FIELDS = (
    "organization",
    "seq",
    "action",
    "actor_email",
    "migration_id",
    "from_snapshot",
    "to_snapshot",
    "terms_version",
    "terms_sha256",
    "diff_sha256",
    "details",
    "ip",
    "user_agent",
    "created_at",
)


def record_body(record: ConsentRecord, *, org_slug: str | None = None) -> dict[str, Any]:
    """The hashed content of a record, as plain JSON values (exports carry exactly this)."""
    return {
        "organization": org_slug or record.organization.slug,
        "seq": record.seq,
        "action": record.action,
        "actor_email": record.actor_email,
        "migration_id": record.migration_id,
        "from_snapshot": record.from_snapshot,
        "to_snapshot": record.to_snapshot,
        "terms_version": record.terms_version,
        "terms_sha256": record.terms_sha256,
        "diff_sha256": record.diff_sha256,
        "details": record.details,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "created_at": record.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }


def compute_hash(body: dict[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical_json(body) + prev_hash.encode()).hexdigest()


HEAD_PURPOSE = "consent"  # the checkpoints' key: one public key checks both kinds of statement


def head_statement(head: LedgerHead, *, org_slug: str) -> bytes:
    """What a head's signature covers: canonical JSON of the chain head and its checkpoint count.
    The `statement` key keeps it apart from a checkpoint's payload signed with the same key."""
    return canonical_json(
        {
            "statement": "ledger-head",
            "organization": org_slug,
            "seq": head.seq,
            "head_hash": head.head_hash,
            "checkpoints": head.checkpoints,
            "last_checkpoint_seq": head.last_checkpoint_seq,
        }
    )


def head_sign(head: LedgerHead, *, org_slug: str) -> None:
    """Sign the head's current fields in place (the caller saves them, under the head's row lock)."""
    head.key_id, head.signature = signing.sign(HEAD_PURPOSE, head_statement(head, org_slug=org_slug))


def head_signature_ok(head: LedgerHead, *, org_slug: str) -> bool:
    if head.seq == 0 and head.checkpoints == 0:
        return True  # an empty chain states nothing
    return bool(head.signature) and signing.verify(
        HEAD_PURPOSE, head.key_id, head_statement(head, org_slug=org_slug), head.signature
    )


def _current_terms(org: Organization) -> tuple[str, str]:
    terms = org.accepted_terms
    return (terms.version, terms.body_sha256) if terms else ("", "")


@transaction.atomic
def ledger_append(
    *,
    org: Organization,
    action: str,
    acting_user=None,
    actor_email: str | None = None,
    migration: Migration | None = None,
    from_snapshot: str = "",
    to_snapshot: str = "",
    terms_version: str | None = None,
    terms_sha256: str | None = None,
    diff_sha256: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    user_agent: str = "",
    at: dt.datetime | None = None,
) -> ConsentRecord:
    """Append one record to the organisation's chain (locks the chain head until commit).

    The terms in force default to the organisation's accepted terms at this moment. A record with
    no actor is a system action (actor_email "system").
    """
    head, _ = LedgerHead.objects.get_or_create(organization=org)
    head = LedgerHead.objects.select_for_update().get(pk=head.pk)
    locked = Organization.objects.select_related("accepted_terms").get(pk=org.pk)
    default_version, default_sha = _current_terms(locked)
    if actor_email is None:
        actor_email = (
            (getattr(acting_user, "email", "") or getattr(acting_user, "username", ""))
            if acting_user
            else "system"
        )
    record = ConsentRecord(
        organization=locked,
        seq=head.seq + 1,
        action=action,
        actor=acting_user if getattr(acting_user, "pk", None) else None,
        actor_email=actor_email,
        migration=migration,
        from_snapshot=from_snapshot,
        to_snapshot=to_snapshot,
        terms_version=default_version if terms_version is None else terms_version,
        terms_sha256=default_sha if terms_sha256 is None else terms_sha256,
        diff_sha256=diff_sha256,
        details=details or {},
        ip=ip or None,
        user_agent=(user_agent or "")[:500],
        created_at=at or timezone.now(),
        prev_hash=head.head_hash,
    )
    record.hash = compute_hash(record_body(record, org_slug=locked.slug), head.head_hash)
    record.save()
    head.seq = record.seq
    head.head_hash = record.hash
    head_sign(head, org_slug=locked.slug)
    head.save(update_fields=["seq", "head_hash", "key_id", "signature"])
    return record
