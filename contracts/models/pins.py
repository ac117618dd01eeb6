"""Pins: the snapshot an organisation is served for an alias, and every change of it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contracts.models.base import AppendOnlyModel, AppendOnlyQuerySet
from contracts.models.catalog import Alias, Snapshot
from contracts.models.tenancy import Organization


class UpgradePolicy(models.TextChoices):
    MANUAL = "manual", "Manual (moves only with consent)"
    FOLLOW = "follow", "Follow the alias default"
    ON_RETIREMENT = "on-retirement", "Stay until retirement"


class Pin(models.Model):
    """The snapshot an organisation is served for one alias, and how it may move."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="pins")
    alias = models.ForeignKey(Alias, on_delete=models.PROTECT, related_name="pins")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="pins")
    policy = models.CharField(max_length=16, choices=UpgradePolicy.choices, default=UpgradePolicy.MANUAL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["alias__name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "alias"], name="one_pin_per_org_and_alias")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.alias.name} → {self.snapshot.name}"


class PinChange(AppendOnlyModel):
    """Every change of a pin (snapshot or policy): the history resolve() travels through."""

    pin = models.ForeignKey(Pin, on_delete=models.PROTECT, related_name="changes")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    alias = models.ForeignKey(Alias, on_delete=models.PROTECT, related_name="+")
    from_snapshot = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    from_policy = models.CharField(max_length=16, choices=UpgradePolicy.choices, blank=True)
    to_policy = models.CharField(max_length=16, choices=UpgradePolicy.choices)
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=300, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["organization", "alias", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.pin}: {self.from_snapshot or '∅'} → {self.to_snapshot} ({self.reason})"
