"""Operations: the last result of the continuous ledger verification, one row per organisation."""

from __future__ import annotations

from django.db import models

from contracts.models.tenancy import Organization


class LedgerVerification(models.Model):
    """What the daily verification found last, and which broken state staff were last told about.

    `failure_fingerprint` names the broken state (empty when intact); staff are mailed when it differs
    from `alerted_fingerprint`, so one break is reported once however many days it stays broken.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="ledger_verification"
    )
    checked_at = models.DateTimeField()
    intact = models.BooleanField()
    records = models.PositiveBigIntegerField(default=0)
    head_seq = models.PositiveBigIntegerField(default=0)
    broken_seq = models.PositiveBigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    failure_fingerprint = models.CharField(max_length=64, blank=True)
    alerted_fingerprint = models.CharField(max_length=64, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(intact=True, failure_fingerprint="")
                | models.Q(intact=False) & ~models.Q(failure_fingerprint=""),
                name="ledger_verification_fingerprint_iff_broken",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {'intact' if self.intact else 'BROKEN'} at {self.checked_at:%Y-%m-%d %H:%M}"
