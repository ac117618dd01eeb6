"""Extended-support grants and received Stripe events."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from contracts.models.catalog import Snapshot
from contracts.models.tenancy import Organization


class ExtendedSupport(models.Model):
    """A paid grant to keep serving a snapshot to one organisation past its retirement."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="extended_support")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="extended_support")
    starts_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()
    stripe_checkout_session_id = models.CharField(max_length=200, blank=True)
    stripe_subscription_id = models.CharField(max_length=200, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-until"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_checkout_session_id"],
                condition=~Q(stripe_checkout_session_id=""),
                name="one_grant_per_checkout_session",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}: {self.snapshot.name} until {self.until:%Y-%m-%d}"


class StripeEvent(models.Model):
    event_id = models.CharField(max_length=200, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
