"""Chain verification: recompute every hash and link of one organisation's ledger."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts.ledger.chain import GENESIS_HASH, compute_hash, record_body
from contracts.models import ConsentRecord, LedgerHead, Organization


@dataclass(frozen=True)
class VerifyResult:
    intact: bool
    records: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


def verify_chain(
    bodies: Iterable[tuple[dict[str, Any], str, str]], *, expected_head: tuple[int, str] | None = None
) -> VerifyResult:
    """Verify (body, prev_hash, hash) triples in sequence order, from the genesis.

    Used for database rows and for exported records alike, so both say the same thing. Removing the
    last records leaves a shorter chain that is consistent in itself: pass `expected_head`
    (seq, hash), from the chain head or a signed checkpoint, to detect that too.
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    for body, prev_hash, own_hash in bodies:
        seq = body.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            reason = f"record at position {expected_seq} has no valid sequence number ({seq!r})"
            return VerifyResult(False, count, expected_seq - 1, expected_prev, expected_seq, reason)
        if seq != expected_seq:
            # Reported at the position where the chain breaks, whatever seq the row claims.
            reason = (
                f"record #{expected_seq} is missing or out of place: found #{seq} after #{expected_seq - 1} "
                "(a record was removed, inserted or reordered)"
            )
            return VerifyResult(False, count, expected_seq - 1, expected_prev, expected_seq, reason)
        if prev_hash != expected_prev:
            reason = f"record #{seq} does not link to the hash of record #{seq - 1}"
            return VerifyResult(False, count, seq - 1, expected_prev, seq, reason)
        if compute_hash(body, prev_hash) != own_hash:
            return VerifyResult(
                False,
                count,
                seq - 1,
                expected_prev,
                seq,
                f"record #{seq} was altered: its hash does not match its content",
            )
        expected_prev = own_hash
        expected_seq += 1
        count += 1
    if expected_head is not None and (expected_seq - 1, expected_prev) != tuple(expected_head):
        head_seq, head_hash = expected_head
        if head_seq > expected_seq - 1:
            reason = f"the chain head is #{head_seq} but the records end at #{expected_seq - 1}: records were removed"
            broken = expected_seq
        else:
            reason = f"the records end at #{expected_seq - 1} but do not reach the chain head #{head_seq} ({head_hash[:12]})"
            broken = head_seq
        return VerifyResult(False, count, expected_seq - 1, expected_prev, broken, reason)
    return VerifyResult(True, count, expected_seq - 1, expected_prev)


def ledger_verify(*, org: Organization) -> VerifyResult:
    """Verify an organisation's chain in the database, and that the head matches its last record."""
    records = ConsentRecord.objects.filter(organization=org).order_by("seq").iterator(chunk_size=2000)
    head = LedgerHead.objects.filter(organization=org).values_list("seq", "head_hash").first()
    return verify_chain(
        ((record_body(record, org_slug=org.slug), record.prev_hash, record.hash) for record in records),
        expected_head=head,
    )
