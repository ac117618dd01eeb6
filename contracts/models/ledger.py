"""The consent ledger: records, the chain head, signed checkpoints and export jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contracts.models.base import AppendOnlyModel, AppendOnlyQuerySet
from contracts.models.consent import Migration
from contracts.models.tenancy import Organization


class LedgerAction(models.TextChoices):
    ACCEPT_TERMS = "accept-terms", "Accepted contract terms"
    CONSENT = "consent", "Consented to a migration"
    DEFER = "defer", "Deferred a migration"
    DECLINE = "decline", "Declined a migration"
    APPLY = "apply", "Migration applied"
    ROLLBACK = "rollback", "Rolled back a migration"
    FORCED = "forced", "Migration forced at retirement"
    BASELINE = "baseline", "Marked a procurement baseline"
    EXTENDED_SUPPORT = "extended-support", "Bought extended support"
    EXTENDED_SUPPORT_END = "extended-support-end", "Extended support ended"
    FOLLOW = "follow", "Pin followed its alias to a new snapshot"
    STAFF_MOVE = "staff-move", "Pin moved by the vendor"


class LedgerHead(models.Model):
    """The head of one organisation's chain; locked (SELECT … FOR UPDATE) to serialise appends.

    The head is itself a signed statement (contracts.ledger.chain.head_statement): its seq and hash,
    how many checkpoints were signed and the seq of the last one. Whoever can write the database but
    not read the signing key can neither move it to a rewritten chain nor hide a deleted checkpoint.
    """

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="ledger_head")
    seq = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default="0" * 64)
    checkpoints = models.PositiveIntegerField(default=0, help_text="Checkpoints signed of this chain.")
    last_checkpoint_seq = models.PositiveBigIntegerField(default=0)
    key_id = models.CharField(max_length=64, blank=True)
    signature = models.TextField(blank=True, help_text="Base64 Ed25519 signature of the head statement.")

    def __str__(self) -> str:
        return f"{self.organization.slug} #{self.seq} {self.head_hash[:12]}"


class ConsentRecord(AppendOnlyModel):
    """One entry of the tamper-evident consent ledger (one hash chain per organisation)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="consent_records")
    seq = models.PositiveBigIntegerField()
    action = models.CharField(max_length=32, choices=LedgerAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, help_text="'system' for automatic actions.")
    migration = models.ForeignKey(
        Migration, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    from_snapshot = models.CharField(max_length=100, blank=True)
    to_snapshot = models.CharField(max_length=100, blank=True)
    terms_version = models.CharField(max_length=32, blank=True)
    terms_sha256 = models.CharField(max_length=64, blank=True)
    diff_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the diff the actor was shown."
    )
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="one_record_per_org_seq"),
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.organization_id}#{self.seq} {self.action}"


class LedgerCheckpoint(AppendOnlyModel):
    """A signed statement of an organisation's chain head at a moment (Ed25519). Append-only."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="checkpoints")
    seq = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=64)
    signature = models.TextField(help_text="Base64 Ed25519 signature of the canonical checkpoint JSON.")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="one_checkpoint_per_org_seq")
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.organization_id}#{self.seq}"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class ConsentExport(models.Model):
    """A logged export of consent history (who, what, when, filters, file hash)."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    format = models.CharField(max_length=16)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    record_count = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export #{self.pk} {self.format} ({self.status})"
