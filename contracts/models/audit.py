"""The audit log of admin actions: who changed what, on which object, before and after, from where.

Append-only like the consent ledger: the model refuses updates and deletes, and on PostgreSQL a
trigger refuses them even from raw SQL (migration 0006_identity). Entries without an organisation
are the vendor-side log (staff actions in /admin/), never shown to customers.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from contracts.models.base import AppendOnlyModel, AppendOnlyQuerySet
from contracts.models.tenancy import Organization


class AuditAction(models.TextChoices):
    API_KEY_CREATE = "api-key.create", "API key created"
    API_KEY_REVOKE = "api-key.revoke", "API key revoked"
    WEBHOOK_CREATE = "webhook.create", "Webhook added"
    WEBHOOK_UPDATE = "webhook.update", "Webhook changed"
    WEBHOOK_ROTATE = "webhook.rotate-secret", "Webhook secret rotated"
    WEBHOOK_DELETE = "webhook.delete", "Webhook removed"
    CONTACT_ADD = "contact.add", "Contact added"
    CONTACT_REMOVE = "contact.remove", "Contact removed"
    CALENDAR_REGENERATE = "calendar.regenerate", "Calendar feed link regenerated"
    CALENDAR_REVOKE = "calendar.revoke", "Calendar feed link revoked"
    MEMBER_INVITE = "member.invite", "Member invited"
    INVITATION_REVOKE = "invitation.revoke", "Invitation revoked"
    INVITATION_ACCEPT = "invitation.accept", "Invitation accepted"
    MEMBER_ROLE_CHANGE = "member.role-change", "Role changed"
    MEMBER_REMOVE = "member.remove", "Member removed"
    MEMBER_JOIN_SSO = "member.join-sso", "Member joined through SSO"
    SSO_CONFIGURE = "sso.configure", "SSO configured"
    SSO_POLICY = "sso.policy", "Sign-in policy changed"
    SCIM_TOKEN_CREATE = "scim-token.create", "SCIM token created"
    SCIM_TOKEN_REVOKE = "scim-token.revoke", "SCIM token revoked"
    SCIM_USER_PROVISION = "scim.user-provision", "User provisioned (SCIM)"
    SCIM_USER_UPDATE = "scim.user-update", "User updated (SCIM)"
    SCIM_USER_DEPROVISION = "scim.user-deprovision", "User deprovisioned (SCIM)"
    SCIM_GROUP_CHANGE = "scim.group-change", "Group changed (SCIM)"
    PIN_POLICY_CHANGE = "pin.policy-change", "Pin upgrade policy changed"
    EXPORT_REQUEST = "export.request", "Consent export requested"
    EXTENDED_SUPPORT_BUY = "extended-support.buy", "Extended support bought"
    ADMIN_ADD = "admin.add", "Staff added an object in /admin/"
    ADMIN_CHANGE = "admin.change", "Staff changed an object in /admin/"
    ADMIN_DELETE = "admin.delete", "Staff deleted an object in /admin/"


class ActorKind(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api-key", "API key"
    SCIM_TOKEN = "scim-token", "SCIM token"
    SYSTEM = "system", "System"


class AuditEntry(AppendOnlyModel):
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_entries",
        help_text="Empty for the vendor-side log (staff actions in /admin/).",
    )
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(
        max_length=254, help_text="The actor as it was then: e-mail, key prefix, SCIM token id or 'system'."
    )
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_time"),
            models.Index(fields=["organization", "action", "-created_at"], name="audit_org_action_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(actor_kind="user") | Q(actor_user__isnull=False), name="audit_user_actor_named"
            )
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"
