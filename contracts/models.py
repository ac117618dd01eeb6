"""The domain of the version contract: catalog, tenancy, pins, terms, migrations, the ledger,
evals, bug reports and billing. Business rules live in services.py; models hold data and the
constraints the database can enforce."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class AppendOnlyError(ValidationError):
    """Raised when code tries to change or remove a row of an append-only history."""


class AppendOnlyModel(models.Model):
    """A history row: written once, never updated or deleted (PostgreSQL triggers back this up)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be deleted.")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be changed.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be deleted.")


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Tenancy
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Terms, migrations and the consent ledger
# --------------------------------------------------------------------------------------------


class ContractTerms(models.Model):
    version = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=200)
    tier = models.CharField(max_length=32, default="standard", help_text="Contract tier offering these terms.")
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


class LedgerAction(models.TextChoices):
    ACCEPT_TERMS = "accept-terms", "Accepted contract terms"
    CONSENT = "consent", "Consented to a migration"
    DEFER = "defer", "Deferred a migration"
    DECLINE = "decline", "Declined a migration"
    APPLY = "apply", "Migration applied"
    ROLLBACK = "rollback", "Rolled back a migration"
    FORCED = "forced", "Migration forced at retirement"
    BASELINE = "baseline", "Marked a procurement baseline"
    EXTENDED_SUPPORT = "extended-support", "Bought extended support"
    EXTENDED_SUPPORT_END = "extended-support-end", "Extended support ended"


class LedgerHead(models.Model):
    """The head of one organisation's chain; locked (SELECT … FOR UPDATE) to serialise appends."""

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="ledger_head")
    seq = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"{self.organization.slug} #{self.seq} {self.head_hash[:12]}"


class ConsentRecord(AppendOnlyModel):
    """One entry of the tamper-evident consent ledger (one hash chain per organisation)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="consent_records")
    seq = models.PositiveBigIntegerField()
    action = models.CharField(max_length=32, choices=LedgerAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True, help_text="'system' for automatic actions.")
    migration = models.ForeignKey(
        Migration, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    from_snapshot = models.CharField(max_length=100, blank=True)
    to_snapshot = models.CharField(max_length=100, blank=True)
    terms_version = models.CharField(max_length=32, blank=True)
    terms_sha256 = models.CharField(max_length=64, blank=True)
    diff_sha256 = models.CharField(max_length=64, blank=True, help_text="sha256 of the diff the actor was shown.")
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="one_record_per_org_seq"),
        ]
        indexes = [models.Index(fields=["organization", "created_at"])]

    def __str__(self) -> str:
        return f"{self.organization_id}#{self.seq} {self.action}"


class LedgerCheckpoint(models.Model):
    """A signed statement of an organisation's chain head at a moment (Ed25519)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="checkpoints")
    seq = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    key_id = models.CharField(max_length=64)
    signature = models.TextField(help_text="Base64 Ed25519 signature of the canonical checkpoint JSON.")

    class Meta:
        ordering = ["organization", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="one_checkpoint_per_org_seq")
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.organization_id}#{self.seq}"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


class ConsentExport(models.Model):
    """A logged export of consent history (who, what, when, filters, file hash)."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    format = models.CharField(max_length=16)
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    record_count = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export #{self.pk} {self.format} ({self.status})"


# --------------------------------------------------------------------------------------------
# Evals, golden samples and baselines
# --------------------------------------------------------------------------------------------


class EvalSuite(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="eval_suites",
        help_text="Empty for a public suite.",
    )
    tolerances = models.JSONField(
        default=dict, blank=True, help_text="metric → largest drop not counted as a regression."
    )
    lower_is_better = models.JSONField(default=list, blank=True, help_text="Metrics where lower wins.")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class EvalResult(models.Model):
    """Scores of one suite on one snapshot: {metric: {"score": x, "subsets": {name: y}}}."""

    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="results")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="eval_results")
    scores = models.JSONField()
    cases = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["suite", "snapshot"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "snapshot"], name="one_result_per_suite_snapshot")
        ]

    def __str__(self) -> str:
        return f"{self.suite.slug} on {self.snapshot.name}"


class ProcurementBaseline(models.Model):
    """The eval result an organisation bought against, per suite."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="baselines")
    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="+")
    result = models.ForeignKey(EvalResult, on_delete=models.PROTECT, related_name="baselines")
    marked_at = models.DateTimeField(default=timezone.now)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "suite"], name="one_baseline_per_org_suite")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug} baseline {self.result}"


class GoldenSample(models.Model):
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="golden_samples")
    prompt_id = models.CharField(max_length=100)
    prompt = models.TextField(blank=True)
    output = models.TextField()

    class Meta:
        ordering = ["snapshot", "prompt_id"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "prompt_id"], name="one_sample_per_snapshot_prompt")
        ]

    def __str__(self) -> str:
        return f"{self.snapshot.name}:{self.prompt_id}"


# --------------------------------------------------------------------------------------------
# Bug reports
# --------------------------------------------------------------------------------------------


class BugStatus(models.TextChoices):
    NEW = "new", "New"
    REPRODUCING = "reproducing", "Reproducing"
    REPRODUCED = "reproduced", "Reproduced"
    CANNOT_REPRODUCE = "cannot-reproduce", "Cannot reproduce (artifact gone)"
    FIXED = "fixed", "Fixed"
    CLOSED = "closed", "Closed"


class BugReport(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="bug_reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reporter_email = models.CharField(max_length=254, blank=True)
    alias = models.ForeignKey(Alias, on_delete=models.PROTECT, related_name="bug_reports")
    observed_at = models.DateTimeField()
    response_id = models.CharField(max_length=200, blank=True)
    receipt = models.JSONField(null=True, blank=True)
    prompt = models.TextField(blank=True)
    output = models.TextField(blank=True)
    expected = models.TextField(blank=True)
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="bug_reports")
    resolved_by = models.CharField(max_length=16, default="history", help_text="history or receipt")
    owning_team = models.CharField(max_length=120)
    status = models.CharField(max_length=20, choices=BugStatus.choices, default=BugStatus.NEW)
    fixed_in = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="fixes"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"bug #{self.pk} on {self.snapshot}"


class BugReportEvent(models.Model):
    report = models.ForeignKey(BugReport, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=20, choices=BugStatus.choices)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.report_id}: {self.status}"


# --------------------------------------------------------------------------------------------
# Billing
# --------------------------------------------------------------------------------------------


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
