"""Ledger verification: recompute every hash and link of one organisation's chain, and hold the
database against what the vendor signed: the chain head's own signature and every signed checkpoint.

What each check catches, for someone who can write the database but cannot read the signing key:
- an edited record: its hash (and every later link) no longer matches;
- an edited record with every later hash and the head recomputed: the head's signature fails, and
  every checkpoint at or after the edit contradicts the record at its seq;
- the last records dropped and the head rewound to them: the head's signature fails (or, with an old
  head row replayed, a checkpoint beyond it has no record);
- a checkpoint row deleted to hide a contradiction: the signed head counts its checkpoints;
- a genuine older state replayed whole (records, checkpoints and head from a backup): nothing in the
  database contradicts it; the organisation's own copies of later checkpoints (e-mailed and exported)
  do, checked with `verify_export --checkpoint` (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts import signing
from contracts.ledger.chain import GENESIS_HASH, compute_hash, head_signature_ok, record_body
from contracts.ledger.checkpoints import SIGNING_PURPOSE, checkpoint_payload
from contracts.models import ConsentRecord, LedgerCheckpoint, LedgerHead, Organization


@dataclass(frozen=True)
class VerifyResult:
    """intact, or the first broken record (`broken_seq`), why (`reason`, then every other problem in
    `problems`), and the first signed checkpoint the database contradicts (`contradicted_checkpoint`,
    the checkpoint's seq). `head_seq`/`head_hash`: the last record known good."""

    intact: bool
    records: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    checkpoints: int = 0
    contradicted_checkpoint: int | None = None
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
            "checkpoints": self.checkpoints,
            "contradicted_checkpoint": self.contradicted_checkpoint,
            "problems": list(self.problems),
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


def _checkpoint_problems(
    org: Organization, head: LedgerHead | None, head_ok: bool
) -> tuple[int, list[tuple[int, str]], list[str], int]:
    """(checkpoints checked, [(checkpoint seq, problem)], head-level problems, last matching seq
    before the first contradiction)."""
    rows = list(LedgerCheckpoint.objects.filter(organization=org).order_by("seq"))
    hashes = dict(
        ConsentRecord.objects.filter(organization=org, seq__in=[row.seq for row in rows]).values_list(
            "seq", "hash"
        )
    )
    contradictions: list[tuple[int, str]] = []
    last_good = 0
    for row in rows:
        when = row.created_at.strftime("%Y-%m-%d %H:%M UTC")
        payload = checkpoint_payload(
            org_slug=org.slug, seq=row.seq, head_hash=row.head_hash, created_at=row.created_at
        )
        if not signing.verify(SIGNING_PURPOSE, row.key_id, payload, row.signature):
            contradictions.append(
                (row.seq, f"checkpoint #{row.seq} of {when} does not verify: the checkpoint row was altered")
            )
            continue
        actual = hashes.get(row.seq)
        if actual is None:
            contradictions.append(
                (
                    row.seq,
                    f"signed checkpoint #{row.seq} of {when} names record #{row.seq}, which the database "
                    "no longer holds: records were removed",
                )
            )
        elif actual != row.head_hash:
            contradictions.append(
                (
                    row.seq,
                    f"record #{row.seq} contradicts the signed checkpoint of {when} (signed "
                    f"{row.head_hash[:16]}…, database {actual[:16]}…): the history was rewritten",
                )
            )
        elif not contradictions:
            last_good = row.seq
    head_problems = []
    if head is not None and head_ok:
        present = {row.seq for row in rows}
        if len(rows) < head.checkpoints or (
            head.last_checkpoint_seq and head.last_checkpoint_seq not in present
        ):
            head_problems.append(
                f"the signed chain head counts {head.checkpoints} checkpoint(s), the last at "
                f"#{head.last_checkpoint_seq}, but the database holds {len(rows)}: a checkpoint was deleted"
            )
    return len(rows), contradictions, head_problems, last_good


def ledger_verify(*, org: Organization) -> VerifyResult:
    """Verify an organisation's chain in the database: every hash and link, the head against the last
    record and against its own signature, and every signed checkpoint against the record at its seq
    (and the head's count of them). Usable from a daily task: it reads only, and says intact or
    names the first broken record and the first contradicted checkpoint."""
    records = ConsentRecord.objects.filter(organization=org).order_by("seq").iterator(chunk_size=2000)
    head = LedgerHead.objects.filter(organization=org).first()
    chain = verify_chain(
        ((record_body(record, org_slug=org.slug), record.prev_hash, record.hash) for record in records),
        expected_head=(head.seq, head.head_hash) if head is not None else None,
    )
    head_ok = head is None or head_signature_ok(head, org_slug=org.slug)
    count, contradictions, head_problems, last_good = _checkpoint_problems(org, head, head_ok)
    problems = [] if chain.intact else [chain.reason]
    problems += [problem for _, problem in contradictions]
    if not head_ok:
        problems.append(
            f"the chain head (#{head.seq}) does not carry a valid vendor signature: it was written outside "
            "the portal (records rewritten or removed and the head moved to match)"
        )
    problems += head_problems
    if not problems:
        return VerifyResult(True, chain.records, chain.head_seq, chain.head_hash, checkpoints=count)
    contradicted = contradictions[0][0] if contradictions else None
    if not chain.intact:
        broken_seq, good_seq, good_hash = chain.broken_seq, chain.head_seq, chain.head_hash
    else:
        # The chain is consistent in itself: what can still be trusted ends at the last checkpoint that
        # holds (the signed head or checkpoints say the rest was rewritten).
        broken_seq = last_good + 1
        good_seq = last_good
        good_hash = (
            ConsentRecord.objects.filter(organization=org, seq=last_good)
            .values_list("hash", flat=True)
            .first()
            or GENESIS_HASH
        )
    return VerifyResult(
        False, chain.records, good_seq, good_hash, broken_seq, problems[0],
        checkpoints=count, contradicted_checkpoint=contradicted, problems=tuple(problems),
    )  # fmt: skip
