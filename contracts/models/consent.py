"""Contract terms and migrations."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contracts.models.catalog import Snapshot
from contracts.models.pins import Pin
from contracts.models.tenancy import Organization


class ContractTerms(models.Model):
    version = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=200)
    tier = models.CharField(
        max_length=32, default="standard", help_text="Contract tier offering these terms."
    )
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64, editable=False)
    effective_at = models.DateTimeField()
    min_notice_days = models.PositiveIntegerField(default=90)
    max_deferral_days = models.PositiveIntegerField(default=60)
    rollback_window_hours = models.PositiveIntegerField(default=72)
    retention_days = models.PositiveIntegerField(default=365)
    ack_escalation_days = models.PositiveIntegerField(default=7)
    retired_bug_policy = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-effective_at"]
        verbose_name_plural = "contract terms"

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    @staticmethod
    def hash_body(body: str) -> str:
        return hashlib.sha256(body.encode()).hexdigest()


class MigrationState(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    CONSENTED = "consented", "Consented (scheduled)"
    DEFERRED = "deferred", "Deferred"
    DECLINED = "declined", "Declined"
    APPLIED = "applied", "Applied"
    ROLLED_BACK = "rolled-back", "Rolled back"
    FORCED = "forced", "Forced at retirement"
    CANCELLED = "cancelled", "Cancelled"


OPEN_MIGRATION_STATES = (MigrationState.PROPOSED, MigrationState.CONSENTED, MigrationState.DEFERRED)


class MigrationOrigin(models.TextChoices):
    STAFF = "staff", "Proposed by the vendor"
    ALIAS_MOVE = "alias-move", "Alias moved"
    DEPRECATION = "deprecation", "Snapshot deprecated"
    CUSTOMER = "customer", "Requested by your organisation"


class Migration(models.Model):
    """A proposed move of one pin from one snapshot to another."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="migrations")
    pin = models.ForeignKey(Pin, on_delete=models.PROTECT, related_name="migrations")
    from_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    to_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=MigrationState.choices, default=MigrationState.PROPOSED)
    origin = models.CharField(max_length=16, choices=MigrationOrigin.choices, default=MigrationOrigin.STAFF)
    note = models.TextField(blank=True)
    proposed_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(null=True, blank=True)
    deferred_until = models.DateTimeField(null=True, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pin"],
                condition=Q(state__in=["proposed", "consented", "deferred"]),
                name="one_open_migration_per_pin",
            ),
            models.CheckConstraint(
                condition=~Q(from_snapshot=models.F("to_snapshot")), name="migration_moves_somewhere"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.from_snapshot} → {self.to_snapshot} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_MIGRATION_STATES
