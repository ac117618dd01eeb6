"""Organisations, their members and roles, and API keys."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    tier = models.CharField(max_length=32, default="standard")
    accepted_terms = models.ForeignKey(
        "ContractTerms", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    accepted_terms_at = models.DateTimeField(null=True, blank=True)
    offered_terms = models.ForeignKey(
        "ContractTerms",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Terms proposed to this organisation (by its tier) and not yet accepted.",
    )
    stripe_customer_id = models.CharField(max_length=100, blank=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("portal:dashboard", kwargs={"org": self.slug})


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    LEGAL = "legal", "Legal"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_user_and_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ApiKeyScope(models.TextChoices):
    ORGANIZATION = "org", "Organisation"
    STAFF = "staff", "Vendor staff"


class ApiKey(models.Model):
    """A bearer key: shown once, stored as sha256, identified by its visible prefix."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.ORGANIZATION)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(scope="staff") | Q(organization__isnull=False),
                name="org_key_has_organization",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_key(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UserPreference(models.Model):
    """A person's own settings, across every organisation they belong to: the time zone pages show
    instants in (UTC until the person chooses another)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    time_zone = models.CharField(max_length=64, default="UTC")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone}"
