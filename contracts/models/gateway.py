"""The data plane: serving gateways and their keys, the pin map's change log, and hourly usage."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contracts.models.base import AppendOnlyModel, AppendOnlyQuerySet
from contracts.models.catalog import Alias, Snapshot
from contracts.models.tenancy import Organization


class Gateway(models.Model):
    """A serving gateway (vendor side): its bearer key works only on /api/v1/gateway/ endpoints."""

    name = models.SlugField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class GatewayReceiptKey(models.Model):
    """A gateway's own Ed25519 receipt key (public half). Receipts signed after `revoked_at` are refused."""

    gateway = models.ForeignKey(Gateway, on_delete=models.PROTECT, related_name="receipt_keys")
    key_id = models.CharField(max_length=32, unique=True)
    public_key_pem = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(key_id__regex=r"^gw-[0-9a-f]{16}$"), name="gateway_key_id_shape"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key_id} ({self.gateway})"


class PinMapChangeKind(models.TextChoices):
    PIN = "pin", "Pin (organisation, alias)"
    ALIAS = "alias", "Alias default"
    SNAPSHOT = "snapshot", "Snapshot lifecycle"


class PinMapChange(AppendOnlyModel):
    """One entry of the pin map's change log: which entry of the map changed. Its id is the map's
    revision. Entries name what changed, not the new value: a delta answers each entry's value as
    it stands when asked. Written in the transaction of the change (contracts.gateway.changelog)."""

    kind = models.CharField(max_length=16, choices=PinMapChangeKind.choices)
    organization = models.CharField(max_length=64, blank=True, help_text="Slug (pin changes).")
    alias = models.CharField(max_length=100, blank=True)
    snapshot = models.CharField(max_length=100, blank=True)
    cause = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"r{self.pk} {self.kind} {self.organization}/{self.alias or self.snapshot} ({self.cause})"


class UsageHour(models.Model):
    """Requests served per (organisation, alias, snapshot, UTC hour), summed over every gateway."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="usage_hours")
    alias = models.ForeignKey(Alias, on_delete=models.PROTECT, related_name="+")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="usage_hours")
    hour = models.DateTimeField()
    requests = models.BigIntegerField()

    class Meta:
        ordering = ["hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "alias", "snapshot", "hour"], name="one_usage_row_per_hour"
            ),
            models.CheckConstraint(condition=Q(requests__gte=0), name="usage_requests_not_negative"),
        ]
        indexes = [
            models.Index(fields=["snapshot", "hour"]),
            models.Index(fields=["organization", "hour"]),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}/{self.alias_id}/{self.snapshot_id} {self.hour:%Y-%m-%d %H}h: {self.requests}"


class UsageBatch(models.Model):
    """A received usage batch: its id makes a replay count nothing twice."""

    gateway = models.ForeignKey(Gateway, on_delete=models.PROTECT, related_name="usage_batches")
    batch_id = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    requests = models.BigIntegerField()
    dropped = models.BigIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "batch_id"], name="one_usage_batch_per_gateway_id")
        ]

    def __str__(self) -> str:
        return f"{self.gateway_id}:{self.batch_id} ({self.rows} rows)"
