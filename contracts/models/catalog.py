"""The catalog: model families, snapshots and their lifecycle dates, changelog entries, aliases and their moves."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contracts.models.base import AppendOnlyModel, AppendOnlyQuerySet


class ModelFamily(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    owning_team = models.CharField(max_length=120, help_text="Team that triages bug reports on this family.")
    owning_team_email = models.EmailField(blank=True)

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "model families"

    def __str__(self) -> str:
        return self.name


class SnapshotStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PREVIEW = "preview", "Preview"
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"
    PURGED = "purged", "Purged"


class Snapshot(models.Model):
    """An immutable, dated artifact. Digest and config are frozen once published."""

    family = models.ForeignKey(ModelFamily, on_delete=models.PROTECT, related_name="snapshots")
    name = models.SlugField(max_length=100, unique=True, help_text="Public id, e.g. chat-2025-09-29.")
    digest = models.CharField(max_length=64, help_text="sha256 of the artifact, hex.")
    config = models.JSONField(default=dict, blank=True)
    released_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    retires_at = models.DateTimeField(null=True, blank=True)
    retention_until = models.DateTimeField(null=True, blank=True)
    replacement = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaces"
    )
    deprecation_notice_url = models.URLField(blank=True)
    # Commercial and operational figures: not part of the frozen artifact, shown in diffs.
    price_input_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    price_output_per_mtok = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    latency_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    # Paid extended support past retirement (billing).
    extended_support_offered = models.BooleanField(default=False)
    extended_support_until = models.DateTimeField(null=True, blank=True)
    extended_support_price_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["family__slug", "released_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="snapshot_digest_is_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(retires_at__isnull=True)
                | Q(deprecated_at__isnull=False, retires_at__gte=models.F("deprecated_at")),
                name="snapshot_retires_after_deprecation",
            ),
            models.CheckConstraint(
                condition=Q(retention_until__isnull=True)
                | Q(retires_at__isnull=False, retention_until__gte=models.F("retires_at")),
                name="snapshot_retention_after_retirement",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def status_at(self, at: dt.datetime | None = None) -> str:
        at = at or timezone.now()
        if self.published_at is None:
            return SnapshotStatus.DRAFT
        if self.retention_until and at >= self.retention_until:
            return SnapshotStatus.PURGED
        if self.retires_at and at >= self.retires_at:
            return SnapshotStatus.RETIRED
        if self.deprecated_at and at >= self.deprecated_at:
            return SnapshotStatus.DEPRECATED
        if at < self.released_at:
            return SnapshotStatus.PREVIEW
        return SnapshotStatus.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at()

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class ChangelogKind(models.TextChoices):
    BREAKING = "breaking", "Breaking"
    BEHAVIOUR = "behaviour", "Behaviour"
    SAFETY = "safety", "Safety"
    COST = "cost", "Cost"
    FIX = "fix", "Fix"


class ChangelogEntry(models.Model):
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="changelog")
    kind = models.CharField(max_length=16, choices=ChangelogKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-published_at", "-id"]
        verbose_name_plural = "changelog entries"
        indexes = [models.Index(fields=["published_at"])]

    def __str__(self) -> str:
        return f"{self.snapshot}: {self.title}"


class Alias(models.Model):
    """A floating name (v1-chat) and its current default target."""

    name = models.SlugField(max_length=100, unique=True)
    family = models.ForeignKey(ModelFamily, on_delete=models.PROTECT, related_name="aliases")
    target = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="default_for")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "aliases"

    def __str__(self) -> str:
        return self.name


class AliasMove(AppendOnlyModel):
    """Every change of an alias's default target, the first one included."""

    alias = models.ForeignKey(Alias, on_delete=models.PROTECT, related_name="moves")
    from_snapshot = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    moved_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["alias", "moved_at", "id"]
        indexes = [models.Index(fields=["alias", "moved_at"])]

    def __str__(self) -> str:
        return f"{self.alias}: {self.from_snapshot or '∅'} → {self.to_snapshot} at {self.moved_at:%Y-%m-%d %H:%M}"
