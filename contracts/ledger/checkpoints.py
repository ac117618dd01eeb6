"""Signed checkpoints: a daily Ed25519 statement of each organisation's chain head.

The customer receives each checkpoint (portal exports page, email to its legal members), so it holds
proof that any later rewrite of its history would contradict: the record at the checkpoint's
sequence must keep the signed hash. Bundles carry the checkpoints inside their range.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contracts import signing
from contracts.canonical import canonical_json
from contracts.ledger import tasks
from contracts.ledger.chain import head_sign
from contracts.models import LedgerCheckpoint, LedgerHead, Membership, Organization, Role
from contracts.outbox import organization_mail_send

SIGNING_PURPOSE = "consent"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def checkpoint_payload(*, org_slug: str, seq: int, head_hash: str, created_at: dt.datetime | str) -> bytes:
    """The bytes that are signed: canonical JSON of organisation, seq, head hash and time."""
    when = created_at if isinstance(created_at, str) else _iso(created_at)
    return canonical_json({"organization": org_slug, "seq": seq, "head_hash": head_hash, "created_at": when})


def checkpoint_as_dict(checkpoint: LedgerCheckpoint, *, org_slug: str | None = None) -> dict[str, Any]:
    return {
        "organization": org_slug or checkpoint.organization.slug,
        "seq": checkpoint.seq,
        "head_hash": checkpoint.head_hash,
        "created_at": _iso(checkpoint.created_at),
        "key_id": checkpoint.key_id,
        "signature": checkpoint.signature,
    }


def checkpoint_verify(checkpoint: LedgerCheckpoint) -> bool:
    payload = checkpoint_payload(
        org_slug=checkpoint.organization.slug,
        seq=checkpoint.seq,
        head_hash=checkpoint.head_hash,
        created_at=checkpoint.created_at,
    )
    return signing.verify(SIGNING_PURPOSE, checkpoint.key_id, payload, checkpoint.signature)


@transaction.atomic
def checkpoint_create(*, org: Organization, at: dt.datetime | None = None) -> LedgerCheckpoint | None:
    """Sign the organisation's current chain head, unless it has no records since its last checkpoint.

    The head row is locked, so the signed (seq, hash) is a head that existed, never a half-appended one.
    """
    head = LedgerHead.objects.select_for_update().filter(organization=org).first()
    if head is None or head.seq == 0:
        return None
    last = LedgerCheckpoint.objects.filter(organization=org).aggregate(top=Max("seq"))["top"] or 0
    if head.seq <= last:
        return None
    created_at = (at or timezone.now()).replace(microsecond=0)
    payload = checkpoint_payload(
        org_slug=org.slug, seq=head.seq, head_hash=head.head_hash, created_at=created_at
    )
    key_id, signature = signing.sign(SIGNING_PURPOSE, payload)
    checkpoint = LedgerCheckpoint.objects.create(
        organization=org, seq=head.seq, head_hash=head.head_hash, created_at=created_at,
        key_id=key_id, signature=signature,
    )  # fmt: skip
    # The head counts its checkpoints under its signature: a checkpoint row deleted later shows.
    head.checkpoints += 1
    head.last_checkpoint_seq = checkpoint.seq
    head_sign(head, org_slug=org.slug)
    head.save(update_fields=["checkpoints", "last_checkpoint_seq", "key_id", "signature"])

    transaction.on_commit(lambda: tasks.checkpoint_deliver.delay(checkpoint.pk))
    return checkpoint


def checkpoints_create_due(*, at: dt.datetime | None = None) -> list[LedgerCheckpoint]:
    """The daily run: a checkpoint for every organisation with records since its last one."""
    created = []
    for org in Organization.objects.filter(ledger_head__seq__gt=0).order_by("slug"):
        checkpoint = checkpoint_create(org=org, at=at)
        if checkpoint is not None:
            created.append(checkpoint)
    return created


def checkpoint_list(*, org: Organization, limit: int = 30) -> list[LedgerCheckpoint]:
    return list(LedgerCheckpoint.objects.filter(organization=org).order_by("-seq")[:limit])


def checkpoint_message(checkpoint: LedgerCheckpoint) -> tuple[str, str]:
    data = checkpoint_as_dict(checkpoint)
    subject = f"Signed ledger checkpoint: {data['organization']} #{data['seq']}"
    body = (
        f"The consent ledger of {checkpoint.organization.name} stood at record #{data['seq']} on "
        f"{data['created_at']}, with chain head {data['head_hash']}.\n\n"
        "Keep this message: it is signed (Ed25519) by the vendor, so any later rewrite of the history up to "
        "this record would contradict it. Verify it with the public key at "
        "/.well-known/consent-signing-key.pem?kid=" + data["key_id"] + " over the canonical JSON of "
        "organization, seq, head_hash and created_at.\n\n" + canonical_json(data).decode() + "\n"
    )
    return subject, body


def checkpoint_deliver(*, checkpoint: LedgerCheckpoint) -> int:
    """Deliver the checkpoint: e-mail to the organisation's legal members and a `ledger.checkpoint`
    webhook to its subscribed endpoints (it is in the portal already). Returns the e-mail recipients.

    Through contracts.outbox: the notification outbox sends each once, even when this task runs twice.
    """
    recipients = sorted(
        set(
            Membership.objects.filter(organization=checkpoint.organization, role=Role.LEGAL)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )
    subject, body = checkpoint_message(checkpoint)
    organization_mail_send(
        org=checkpoint.organization, kind="ledger-checkpoint", subject=subject, body=body,
        recipients=recipients, dedupe_key=f"ledger-checkpoint:{checkpoint.pk}",
        webhook_event="ledger.checkpoint", webhook_data={"checkpoint": checkpoint_as_dict(checkpoint)},
    )  # fmt: skip
    return len(recipients)
