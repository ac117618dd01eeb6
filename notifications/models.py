"""The notice outbox, webhook endpoints and deliveries, named contacts, calendar tokens.

A Notice is one notification for one organisation on one channel. The database holds it unique per
(organisation, snapshot or migration, milestone, channel), or per (organisation, dedupe key, channel)
when it has a key (a deferral's notice is keyed by its ledger record: each deferral of a migration is
told once), so planning twice inserts nothing new, and the row's status is the only truth about
whether it was sent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from contracts.models import Migration, Organization, Snapshot


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class Milestone(models.TextChoices):
    DEPRECATION_ANNOUNCED = "deprecation-announced", "Deprecation announced"
    NOTICE_DATE = "notice-date", "Contractual notice date"
    T_90 = "t-90", "90 days to retirement"
    T_30 = "t-30", "30 days to retirement"
    T_7 = "t-7", "7 days to retirement"
    T_1 = "t-1", "1 day to retirement"
    RETIREMENT_DAY = "retirement-day", "Retirement day"
    FORCED_MIGRATION_APPLIED = "forced-migration-applied", "Forced migration applied"
    MIGRATION_APPLIED = "migration-applied", "Migration applied"
    MIGRATION_PROPOSED = "migration-proposed", "Migration proposed"
    DEADLINE_APPROACHING = "deadline-approaching", "Migration deadline approaching"
    STILL_IN_USE = "still-in-use", "Still in use 7 days before retirement"
    MIGRATION_ROLLED_BACK = "migration-rolled-back", "Migration rolled back"
    MIGRATION_DECLINED = "migration-declined", "Migration declined"
    MIGRATION_DEFERRED = "migration-deferred", "Migration deferred"
    ESCALATION = "escalation", "Unacknowledged notice escalated"
    ADHOC = "adhoc", "Other notice"


# Notices that carry contractual weight: they ask for acknowledgement and cannot be unsubscribed.
LEGAL_MILESTONES = frozenset(
    {
        Milestone.DEPRECATION_ANNOUNCED,
        Milestone.NOTICE_DATE,
        Milestone.RETIREMENT_DAY,
        Milestone.FORCED_MIGRATION_APPLIED,
        Milestone.MIGRATION_PROPOSED,
        Milestone.ESCALATION,
    }
)


class WebhookEvent(models.TextChoices):
    SNAPSHOT_DEPRECATED = "snapshot.deprecated", "snapshot.deprecated"
    MIGRATION_PROPOSED = "migration.proposed", "migration.proposed"
    MIGRATION_DEADLINE_APPROACHING = "migration.deadline_approaching", "migration.deadline_approaching"
    SNAPSHOT_RETIRED = "snapshot.retired", "snapshot.retired"
    MIGRATION_APPLIED = "migration.applied", "migration.applied"
    LEDGER_CHECKPOINT = "ledger.checkpoint", "ledger.checkpoint"
    EVAL_REFRESHED = "eval.refreshed", "eval.refreshed"
    MIGRATION_ROLLED_BACK = "migration.rolled_back", "migration.rolled_back"
    MIGRATION_DECLINED = "migration.declined", "migration.declined"
    MIGRATION_DEFERRED = "migration.deferred", "migration.deferred"
    PIN_MOVED = "pin.moved", "pin.moved"


MILESTONE_EVENTS = {
    Milestone.DEPRECATION_ANNOUNCED: WebhookEvent.SNAPSHOT_DEPRECATED,
    Milestone.MIGRATION_PROPOSED: WebhookEvent.MIGRATION_PROPOSED,
    Milestone.DEADLINE_APPROACHING: WebhookEvent.MIGRATION_DEADLINE_APPROACHING,
    Milestone.RETIREMENT_DAY: WebhookEvent.SNAPSHOT_RETIRED,
    Milestone.FORCED_MIGRATION_APPLIED: WebhookEvent.MIGRATION_APPLIED,
    Milestone.MIGRATION_APPLIED: WebhookEvent.MIGRATION_APPLIED,
    Milestone.MIGRATION_ROLLED_BACK: WebhookEvent.MIGRATION_ROLLED_BACK,
    Milestone.MIGRATION_DECLINED: WebhookEvent.MIGRATION_DECLINED,
    Milestone.MIGRATION_DEFERRED: WebhookEvent.MIGRATION_DEFERRED,
}


class NoticeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (no recipient)"
    OBSOLETE = "obsolete", "Not sent (no longer true)"


class Notice(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notices")
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    migration = models.ForeignKey(
        Migration, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    milestone = models.CharField(max_length=32, choices=Milestone.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    dedupe_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="Identity of an ad-hoc notice, or of a deferral's (its ledger record).",
    )
    kind = models.CharField(max_length=64, blank=True)
    escalated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="escalations"
    )
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    recipients = models.JSONField(default=list, blank=True, help_text="Explicit recipients; empty = by role.")
    legal = models.BooleanField(default=False)
    due_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time a dispatcher queued a send task."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    status_reason = models.CharField(
        max_length=300, blank=True, help_text="Why the notice was not sent or was sent late."
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by_email = models.CharField(max_length=254, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "snapshot", "milestone", "channel"],
                condition=Q(snapshot__isnull=False, migration__isnull=True),
                name="one_notice_per_org_snapshot_milestone_channel",
            ),
            models.UniqueConstraint(
                fields=["organization", "migration", "milestone", "channel"],
                condition=Q(migration__isnull=False, dedupe_key=""),
                name="one_notice_per_org_migration_milestone_channel",
            ),
            models.UniqueConstraint(
                fields=["organization", "dedupe_key", "channel"],
                condition=~Q(dedupe_key=""),
                name="one_notice_per_org_dedupe_key_channel",
            ),
            models.CheckConstraint(
                condition=Q(snapshot__isnull=False) | Q(migration__isnull=False) | ~Q(dedupe_key=""),
                name="notice_names_what_it_is_about",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["organization", "-due_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.milestone}/{self.channel} ({self.status})"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class Contact(models.Model):
    """A named recipient beyond the organisation's admins and legal members."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notice_contacts")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], name="one_contact_per_org_email")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.email}"


class Unsubscription(models.Model):
    """An address that opted out of the optional (non-legal) notices of one organisation."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "email"], name="one_unsubscription_per_email")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.email} unsubscribed"


class WebhookEndpoint(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, help_text="whsec_… (signing key; shown to the customer once).")
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.organization_id}:{self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused"  # the address is not publicly routable: never connected to


class WebhookDelivery(models.Model):
    """One message to one endpoint, with its attempts: the delivery log."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    notice = models.ForeignKey(
        Notice, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(max_length=64)
    msg_id = models.CharField(max_length=64, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["notice", "endpoint"],
                condition=Q(notice__isnull=False),
                name="one_delivery_per_notice_endpoint",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"


class CalendarToken(models.Model):
    """The capability in the calendar feed's URL; revoking it breaks old subscriptions."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calendar_tokens")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.organization_id}:calendar token ({'revoked' if self.revoked_at else 'active'})"


class FeedToken(models.Model):
    """A member's own capability for the organisation's Atom feed and calendar: a feed reader or a
    calendar subscribes with it, no session needed. Revoked by its owner (or when they leave the
    organisation: a token works only while its user is a member)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="feed_tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_tokens")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"],
                condition=Q(revoked_at__isnull=True),
                name="one_live_feed_token_per_member",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.organization_id}:{self.user_id} feed token ({'revoked' if self.revoked_at else 'active'})"
        )
