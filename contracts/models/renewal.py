"""Renewal and audit: eval refresh runs, the vendor's eval runners that claim them, audit packs."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contracts.models.catalog import Snapshot
from contracts.models.consent import Migration
from contracts.models.evals import EvalResult, EvalSuite
from contracts.models.ledger import ExportStatus
from contracts.models.tenancy import Organization


class EvalRunner(models.Model):
    """A vendor-side process that runs eval suites: authenticates with its own runner key (vcr_…)."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class EvalRunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    CLAIMED = "claimed", "Running"
    DONE = "done", "Results in"
    FAILED = "failed", "Failed"


OPEN_RUN_STATES = (EvalRunState.QUEUED, EvalRunState.CLAIMED)


class EvalRun(models.Model):
    """An organisation's request to re-run a procurement suite on one snapshot, and its outcome."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="eval_runs")
    suite = models.ForeignKey(EvalSuite, on_delete=models.PROTECT, related_name="runs")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="eval_runs")
    migration = models.ForeignKey(
        Migration, null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_runs"
    )
    alias_name = models.CharField(
        max_length=100, blank=True, help_text="The alias served, if asked by alias."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=EvalRunState.choices, default=EvalRunState.QUEUED)
    runner = models.ForeignKey(
        EvalRunner, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    lease_token = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    scores = models.JSONField(null=True, blank=True)
    cases = models.JSONField(null=True, blank=True)
    result = models.ForeignKey(
        EvalResult, null=True, blank=True, on_delete=models.PROTECT, related_name="runs",
        help_text="The catalogue result this run created (when the snapshot had none for the suite).",
    )  # fmt: skip
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "suite", "snapshot"],
                condition=Q(state__in=["queued", "claimed"]),
                name="one_open_run_per_org_suite_snapshot",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="eval_run_progress_percent"),
        ]
        indexes = [models.Index(fields=["state", "requested_at"])]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.suite_id} on {self.snapshot_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_RUN_STATES


class AuditPack(models.Model):
    """A built audit pack: signed PDF + JSON + verifiable ledger records in one zip."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="audit_packs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    aliases = models.JSONField(default=list, blank=True, help_text="Alias names; empty: every pin.")
    period_from = models.DateTimeField(null=True, blank=True)
    period_to = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_from__isnull=True) | Q(period_to__isnull=True) | Q(period_from__lte=models.F("period_to")),
                name="audit_pack_period_ordered",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"audit pack #{self.pk} ({self.status})"
