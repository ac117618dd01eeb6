"""Continuous verification: every organisation's ledger is verified daily (beat), the result is kept
for the metrics, and staff are mailed once per broken state.

The check itself is `contracts.ledger.verify.ledger_verify` (chain, head and whatever else it
verifies): this module only runs it, records what it said and tells people.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from contracts.canonical import canonical_json
from contracts.ledger.verify import VerifyResult, ledger_verify
from contracts.models import LedgerVerification, Organization

log = logging.getLogger(__name__)

# Numbers and hashes in a reason move as records are appended behind a break; the break is the same.
_MOVING_PARTS = re.compile(r"\b[0-9a-f]{12,64}\b|\d+")


def failure_fingerprint(result: VerifyResult) -> str:
    """Identity of a broken state: the first broken record and the kind of break ("" when intact)."""
    if result.intact:
        return ""
    kind = _MOVING_PARTS.sub("#", result.reason)
    return hashlib.sha256(canonical_json({"broken_seq": result.broken_seq, "kind": kind})).hexdigest()


@transaction.atomic
def ledger_verification_record(
    *, org: Organization, result: VerifyResult, at: dt.datetime | None = None
) -> LedgerVerification:
    """Store what a verification found. Back to intact: the next break is a new one, mailed again."""
    fingerprint = failure_fingerprint(result)
    values = {
        "checked_at": at or timezone.now(),
        "intact": result.intact,
        "records": result.records,
        "head_seq": result.head_seq,
        "broken_seq": result.broken_seq,
        "reason": result.reason[:2000],
        "failure_fingerprint": fingerprint,
    }
    if result.intact:
        values.update(alerted_fingerprint="", alerted_at=None)
    verification, _ = LedgerVerification.objects.update_or_create(organization=org, defaults=values)
    return verification


def staff_recipients() -> list[str]:
    users = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)) | set(settings.OPS_ALERT_EMAILS))


@transaction.atomic
def ledger_verification_alert(*, org: Organization, at: dt.datetime | None = None) -> bool:
    """Mail staff about the organisation's broken ledger unless they were told about this break.

    The row is locked while the mail goes out, so two runs at once mail once; a failed send rolls
    back and the next run tries again. Returns whether a mail was sent.
    """
    verification = LedgerVerification.objects.select_for_update().filter(organization=org).first()
    if (
        verification is None
        or verification.intact
        or verification.failure_fingerprint == verification.alerted_fingerprint
    ):
        return False
    recipients = staff_recipients()
    if not recipients:
        log.error("ledger of %s is broken and no staff address is configured", org.slug)
        return False
    subject = f"[ledger] {org.slug}: consent ledger verification FAILED at record #{verification.broken_seq}"
    body = (
        f"The daily verification of the consent ledger of {org.name} ({org.slug}) failed on "
        f"{verification.checked_at:%Y-%m-%d %H:%M} UTC.\n\n"
        f"First broken record: #{verification.broken_seq}\nReason: {verification.reason}\n"
        f"Last good record: #{verification.head_seq}\n\n"
        f"Reproduce with: manage.py verify_ledger --org {org.slug}\n"
        "This message is sent once for this break; the metric vcp_ledger_verification_ok stays 0 "
        "until the chain verifies again.\n"
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    verification.alerted_fingerprint = verification.failure_fingerprint
    verification.alerted_at = at or timezone.now()
    verification.save(update_fields=["alerted_fingerprint", "alerted_at"])
    log.warning("ledger of %s broken at #%s: staff mailed", org.slug, verification.broken_seq)
    return True


def ledger_verify_all(*, at: dt.datetime | None = None) -> dict[str, int]:
    """The daily run over every organisation. One organisation's failure never stops the others."""
    counts = {"intact": 0, "broken": 0, "alerted": 0}
    for org in Organization.objects.order_by("slug"):
        result = ledger_verify(org=org)
        ledger_verification_record(org=org, result=result, at=at)
        if result.intact:
            counts["intact"] += 1
            continue
        counts["broken"] += 1
        log.error("ledger of %s broken at #%s: %s", org.slug, result.broken_seq, result.reason)
        try:
            alerted = ledger_verification_alert(org=org, at=at)
        except Exception:  # the mail server is away: the next run tries again (nothing was marked)
            log.exception("could not mail staff about the broken ledger of %s", org.slug)
            continue
        counts["alerted"] += alerted
    return counts
