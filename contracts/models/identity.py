"""Enterprise identity: invitations, per-organisation single sign-on, SCIM provisioning."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from contracts.models.tenancy import Organization, Role


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class Invitation(models.Model):
    """An invitation by e-mail: its link carries a secret stored only as sha256; single use, expiring."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="one_open_invitation_per_org_and_email",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")), name="invitation_expires_later"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization} ({self.role})"


class IdentitySettings(models.Model):
    """How an organisation's people sign in: its OpenID Connect provider and its policies.

    The provider's client secret lives only in django-allauth's SocialApp (provider_id
    `org-<slug>`), which the sso_configure service keeps in step with this row.
    """

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="identity")
    sso_issuer = models.URLField(max_length=300, blank=True)
    sso_client_id = models.CharField(max_length=191, blank=True)
    sso_provider_id = models.SlugField(max_length=80, unique=True, null=True, blank=True)
    sso_default_role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    require_sso = models.BooleanField(
        default=False, help_text="Members (vendor staff excepted) may sign in only through the provider."
    )
    require_mfa_for_admins = models.BooleanField(
        default=False, help_text="Admins must enrol and use a second factor (TOTP or a passkey)."
    )
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "identity settings"

    def __str__(self) -> str:
        return f"identity of {self.organization}"

    @property
    def sso_configured(self) -> bool:
        return bool(self.sso_provider_id and self.sso_issuer)


class OrgDomain(models.Model):
    """An e-mail domain an organisation owns: addresses there sign in through its provider.

    Domains named by vendor staff (`manage.py sso_configure`) are verified at once; domains an
    organisation admin adds wait for staff to verify them, because a verified domain lets the
    organisation's provider speak for every address at it.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)
    created_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class ScimToken(models.Model):
    """A bearer token the organisation's identity provider provisions with: shown once, stored as sha256."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="scim_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ScimUser(models.Model):
    """A person the organisation's identity provider provisioned (the SCIM User resource).

    Active: the person is a member (a Membership exists). Deprovisioned (`active` false): the
    membership is gone and their sessions ended; the row, the account and every ledger record stay.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="scim_users")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="scim_identities"
    )
    scim_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    external_id = models.CharField(max_length=254, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="one_scim_user_per_org")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} (SCIM)"


class ScimGroup(models.Model):
    """A group the identity provider pushes; its role (if any) is the role its members get."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="scim_groups")
    scim_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    external_id = models.CharField(max_length=254, blank=True)
    display_name = models.CharField(max_length=200)
    role = models.CharField(
        max_length=16, choices=Role.choices, blank=True, help_text="Role its members get; empty: none."
    )
    members = models.ManyToManyField(ScimUser, related_name="groups", blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["display_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "display_name"], name="one_scim_group_name_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.organization})"
