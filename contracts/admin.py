"""Staff console in the Django admin. Every write goes through the services; histories are read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from contracts import models
from contracts.catalog import services as catalog_services
from contracts.catalog.rules import move_target_check
from contracts.consent.services import migration_propose, terms_create
from contracts.errors import ApplicationError
from contracts.evals import services as eval_services
from contracts.gateway import services as gateway_services
from contracts.identity import services as identity_services
from contracts.pins import services as pins_services
from contracts.renewal import services as renewal_services
from contracts.tenancy import services as tenancy_services


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only histories: staff read them, nobody edits them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ServiceAdmin(admin.ModelAdmin):
    """Runs the service's own checks while the form validates, so a refusal is a form error on the
    same form with what was typed kept (and nothing is saved); an ApplicationError that only the
    write itself finds (a race) is an error message and the form opens again, never beside
    "changed successfully"."""

    # Service field names that the admin form calls otherwise.
    form_field_names: dict[str, str] = {}

    def form_check(self, request: HttpRequest, form, obj) -> None:
        """Raise the service's ApplicationError for what `form.cleaned_data` asks (writes nothing)."""

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        model_admin = self

        class CheckedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                if not self.errors:
                    try:
                        model_admin.form_check(request, self, obj)
                    except ApplicationError as exc:
                        model_admin.form_refusal(self, exc)
                return cleaned

        return CheckedForm

    def form_refusal(self, form, exc: ApplicationError) -> None:
        for field, message in exc.fields.items():
            name = self.form_field_names.get(field, field)
            if name in form.fields and isinstance(message, str):
                form.add_error(name, message)
        form.add_error(None, exc.message)

    def run_service(self, request: HttpRequest, func, **kwargs):
        try:
            return func(**kwargs)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            request._service_refused = True
            return None

    def response_change(self, request: HttpRequest, obj):
        if getattr(request, "_service_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def response_add(self, request: HttpRequest, obj, post_url_continue=None):
        if getattr(request, "_service_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_add(request, obj, post_url_continue)

    def log_change(self, request: HttpRequest, obj, message):
        if getattr(request, "_service_refused", False):
            return None
        return super().log_change(request, obj, message)


@admin.register(models.ModelFamily)
class ModelFamilyAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "owning_team", "owning_team_email")
    search_fields = ("slug", "name", "owning_team")


class ChangelogInline(admin.TabularInline):
    model = models.ChangelogEntry
    extra = 0


@admin.register(models.Snapshot)
class SnapshotAdmin(ServiceAdmin):
    list_display = (
        "name",
        "family",
        "status",
        "released_at",
        "deprecated_at",
        "retires_at",
        "retention_until",
    )
    list_filter = ("family",)
    search_fields = ("name", "digest")
    inlines = [ChangelogInline]
    actions = ["publish"]

    def form_check(self, request: HttpRequest, form, obj) -> None:
        lifecycle = ("deprecated_at", "retires_at", "retention_until", "replacement")
        if obj is not None and any(f in form.changed_data for f in lifecycle):
            catalog_services.snapshot_lifecycle_check(
                snapshot=obj,
                retires_at=form.cleaned_data.get("retires_at"),
                replacement=form.cleaned_data.get("replacement"),
            )

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "replacement":
            kwargs["queryset"] = models.Snapshot.objects.filter(published_at__isnull=False).select_related(
                "family"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        readonly = ["published_at"]
        if obj is not None and obj.is_published:
            readonly += ["digest", "config", "family", "name"]
        return readonly

    def save_model(self, request, obj, form, change):
        if not change:
            data = {
                f: form.cleaned_data[f]
                for f in form.cleaned_data
                if f not in ("family", "name", "digest", "config", "released_at")
            }
            self.run_service(
                request,
                catalog_services.snapshot_create,
                family=form.cleaned_data["family"],
                name=form.cleaned_data["name"],
                digest=form.cleaned_data["digest"],
                config=form.cleaned_data.get("config") or {},
                released_at=form.cleaned_data["released_at"],
                **data,
            )
            created = models.Snapshot.objects.filter(name=form.cleaned_data["name"]).first()
            if created is not None:
                obj.pk = created.pk
            return
        lifecycle = ("deprecated_at", "retires_at", "retention_until", "replacement")
        other = {f: form.cleaned_data[f] for f in form.changed_data if f not in lifecycle}
        if other:
            self.run_service(request, catalog_services.snapshot_update, snapshot=obj, data=other)
        if any(f in form.changed_data for f in lifecycle):
            # Retirement dates pass the contract guard (min notice of every affected organisation).
            self.run_service(
                request,
                catalog_services.snapshot_lifecycle_set,
                snapshot=obj,
                acting_user=request.user,
                **{f: form.cleaned_data[f] for f in lifecycle},
            )

    def save_related(self, request, form, formsets, change):
        if form.instance.pk:
            super().save_related(request, form, formsets, change)

    @admin.action(description="Publish (freezes digest and config)")
    def publish(self, request: HttpRequest, queryset: QuerySet) -> None:
        for snapshot in queryset:
            self.run_service(request, catalog_services.snapshot_publish, snapshot=snapshot)
        self.message_user(request, f"Published {queryset.count()} snapshot(s).")


@admin.register(models.ChangelogEntry)
class ChangelogEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "snapshot", "kind", "published_at")
    list_filter = ("kind", "snapshot__family")


@admin.register(models.Alias)
class AliasAdmin(ServiceAdmin):
    list_display = ("name", "family", "target", "created_at")
    search_fields = ("name",)
    form_field_names = {"to_snapshot": "target"}

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        if obj is not None and "target" in form_class.base_fields:
            # Only this alias's family can be its target.
            field = form_class.base_fields["target"]
            field.queryset = models.Snapshot.objects.filter(
                family_id=obj.family_id, published_at__isnull=False
            ).order_by("-released_at")
        return form_class

    def form_check(self, request: HttpRequest, form, obj) -> None:
        target = form.cleaned_data.get("target")
        if target is None:
            return
        if obj is None:
            family = form.cleaned_data.get("family")
            if family is not None:
                move_target_check(snapshot=target, family=family, at=timezone.now(), field="target")
        elif "target" in form.changed_data:
            move_target_check(snapshot=target, family=obj.family_id, at=timezone.now(), field="target")

    def get_readonly_fields(self, request, obj=None):
        return ("created_at",) if obj is None else ("created_at", "family", "name")

    def save_model(self, request, obj, form, change):
        if not change:
            alias = self.run_service(
                request,
                catalog_services.alias_create,
                name=obj.name,
                family=obj.family,
                target=obj.target,
                acting_user=request.user,
                description=obj.description,
            )
            if alias is not None:
                obj.pk = alias.pk
            return
        if "target" in form.changed_data:
            self.run_service(
                request,
                catalog_services.alias_move,
                alias=obj,
                to_snapshot=form.cleaned_data["target"],
                reason=f"moved by {request.user} in the staff console",
                acting_user=request.user,
            )
        if "description" in form.changed_data:
            models.Alias.objects.filter(pk=obj.pk).update(description=obj.description)


@admin.register(models.AliasMove)
class AliasMoveAdmin(ReadOnlyAdmin):
    list_display = ("alias", "from_snapshot", "to_snapshot", "moved_at", "reason", "actor")
    list_filter = ("alias",)


@admin.register(models.Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "tier", "accepted_terms", "created_at")
    search_fields = ("slug", "name")
    readonly_fields = ("accepted_terms", "accepted_terms_at")


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role")
    list_filter = ("role", "organization")


@admin.register(models.Pin)
class PinAdmin(ServiceAdmin):
    list_display = ("organization", "alias", "snapshot", "policy", "updated_at")
    list_filter = ("policy", "organization", "alias")

    def form_check(self, request: HttpRequest, form, obj) -> None:
        snapshot = form.cleaned_data.get("snapshot")
        alias = obj.alias if obj is not None else form.cleaned_data.get("alias")
        org = obj.organization if obj is not None else form.cleaned_data.get("organization")
        if snapshot is not None and alias is not None and (obj is None or "snapshot" in form.changed_data):
            move_target_check(
                snapshot=snapshot, family=alias.family_id, at=timezone.now(), field="snapshot", org=org
            )

    def get_readonly_fields(self, request, obj=None):
        return (
            ("created_at", "updated_at")
            if obj is None
            else ("organization", "alias", "created_at", "updated_at")
        )

    def save_model(self, request, obj, form, change):
        if not change or "snapshot" in form.changed_data:
            pin = self.run_service(
                request,
                pins_services.pin_set,
                org=obj.organization,
                alias=obj.alias,
                snapshot=obj.snapshot,
                policy=obj.policy,
                acting_user=request.user,
                reason="set by staff",
                # A vendor's move of an existing pin is told to the customer, in its ledger.
                ledger_action=models.LedgerAction.STAFF_MOVE if change else None,
            )
            if pin is not None:
                obj.pk = pin.pk
        elif "policy" in form.changed_data:
            self.run_service(
                request, pins_services.pin_policy_change, pin=obj, policy=obj.policy, acting_user=request.user
            )


@admin.register(models.PinChange)
class PinChangeAdmin(ReadOnlyAdmin):
    list_display = (
        "organization",
        "alias",
        "from_snapshot",
        "to_snapshot",
        "to_policy",
        "changed_at",
        "reason",
    )
    list_filter = ("organization", "alias")


@admin.register(models.ApiKey)
class ApiKeyAdmin(ServiceAdmin):
    list_display = ("name", "prefix", "organization", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = ("scope", "organization")
    fields = ("organization", "scope", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        ro = ["prefix", "created_at", "last_used_at", "revoked_at"]
        return ro if obj is None else [*ro, "organization", "scope"]

    def save_model(self, request, obj, form, change):
        if change:
            models.ApiKey.objects.filter(pk=obj.pk).update(name=obj.name)
            return
        result = self.run_service(
            request,
            tenancy_services.api_key_create,
            org=obj.organization,
            name=obj.name,
            scope=obj.scope,
            acting_user=request.user,
        )
        if result is not None:
            key, raw = result
            obj.pk = key.pk
            self.message_user(request, f"New key (shown once, copy it now): {raw}", level=messages.WARNING)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for key in queryset:
            tenancy_services.api_key_revoke(api_key=key, acting_user=request.user)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


# --------------------------------------------------------------------------------------------
# Terms, migrations and the consent ledger (issue 4)
# --------------------------------------------------------------------------------------------


@admin.register(models.ContractTerms)
class ContractTermsAdmin(ServiceAdmin):
    """New versions go through terms_create (which computes body_sha256); published ones are frozen."""

    list_display = (
        "version",
        "title",
        "tier",
        "effective_at",
        "min_notice_days",
        "max_deferral_days",
        "rollback_window_hours",
        "body_sha256",
    )
    list_filter = ("tier",)
    readonly_fields = ("body_sha256", "created_at")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):

        data = {f: form.cleaned_data[f] for f in form.cleaned_data if f not in ("body_sha256", "created_at")}
        terms = self.run_service(request, terms_create, **data)
        if terms is not None:
            obj.__dict__.update({k: v for k, v in terms.__dict__.items() if k != "_state"})
            obj._state.adding = False

    def log_addition(self, request, obj, message):
        return super().log_addition(request, obj, message) if obj.pk else None

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:  # refused by the service; the reason is already in the messages
            return redirect("admin:contracts_contractterms_changelist")
        return super().response_add(request, obj, post_url_continue)


@admin.register(models.Migration)
class MigrationAdmin(ServiceAdmin):
    """Staff propose a migration (add form: pin, target, note) or re-propose closed ones (action)."""

    list_display = (
        "id",
        "organization",
        "pin",
        "from_snapshot",
        "to_snapshot",
        "state",
        "origin",
        "deadline",
        "proposed_at",
    )
    list_filter = ("state", "origin", "organization")
    actions = ["propose"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("pin", "to_snapshot", "note")
        return [f.name for f in self.model._meta.fields]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else [f.name for f in self.model._meta.fields]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):

        if change:
            return
        migration = self.run_service(
            request,
            migration_propose,
            pin=form.cleaned_data["pin"],
            to_snapshot=form.cleaned_data["to_snapshot"],
            note=form.cleaned_data.get("note", ""),
            acting_user=request.user,
        )
        if migration is not None:
            obj.__dict__.update({k: v for k, v in migration.__dict__.items() if k != "_state"})
            obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        return None

    def log_addition(self, request, obj, message):
        return super().log_addition(request, obj, message) if obj.pk else None

    def response_add(self, request, obj, post_url_continue=None):
        if obj.pk is None:  # refused by the service; the reason is already in the messages
            return redirect("admin:contracts_migration_changelist")
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Propose (again) the selected moves to their pins")
    def propose(self, request: HttpRequest, queryset: QuerySet) -> None:

        proposed = 0
        for migration in queryset.select_related("pin", "to_snapshot"):
            if migration.is_open:
                continue
            if (
                self.run_service(
                    request,
                    migration_propose,
                    pin=migration.pin,
                    to_snapshot=migration.to_snapshot,
                    note=f"Proposed again by {request.user} (was #{migration.pk}).",
                    acting_user=request.user,
                )
                is not None
            ):
                proposed += 1
        self.message_user(request, f"Proposed {proposed} migration(s).")


@admin.register(models.ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "organization",
        "seq",
        "action",
        "actor_email",
        "migration",
        "terms_version",
        "created_at",
        "hash",
    )
    list_filter = ("action", "organization")
    search_fields = ("hash", "actor_email")


@admin.register(models.LedgerHead)
class LedgerHeadAdmin(ReadOnlyAdmin):
    list_display = ("organization", "seq", "head_hash")


# Billing (contracts/billing.py): grants come from paid Checkout sessions, events from Stripe.
# Extended support is offered per snapshot on the Snapshot form (extended_support_* fields).


@admin.register(models.ExtendedSupport)
class ExtendedSupportAdmin(ReadOnlyAdmin):
    list_display = (
        "organization",
        "snapshot",
        "starts_at",
        "until",
        "cancelled_at",
        "stripe_subscription_id",
    )
    list_filter = ("organization", "snapshot")
    search_fields = (
        "organization__slug",
        "snapshot__name",
        "stripe_checkout_session_id",
        "stripe_subscription_id",
    )


@admin.register(models.StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "type", "received_at", "processed_at", "error")
    list_filter = ("type",)
    search_fields = ("event_id", "type")
    readonly_fields = ("event_id", "type", "payload", "received_at", "processed_at", "error")


# Bug reports (contracts/bugs/): filed by customers, triaged on the staff pages at /staff/bugs/,
# where every status change goes through contracts.bugs.services. Here they are read-only.


class BugReportEventInline(admin.TabularInline):
    model = models.BugReportEvent
    extra = 0
    can_delete = False
    fields = ("status", "note", "actor", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.BugReport)
class BugReportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "organization",
        "alias",
        "snapshot",
        "owning_team",
        "status",
        "resolved_by",
        "created_at",
        "triage_link",
    )
    list_filter = ("status", "resolved_by", "snapshot__family", "organization")
    search_fields = ("response_id", "snapshot__name", "organization__slug", "reporter_email")
    inlines = [BugReportEventInline]

    @admin.display(description="Triage")
    def triage_link(self, obj: models.BugReport) -> str:
        return format_html(
            '<a href="{}">open</a>', reverse("portal:staff_bug_detail", kwargs={"report_id": obj.pk})
        )


@admin.register(models.BugReportEvent)
class BugReportEventAdmin(ReadOnlyAdmin):
    list_display = ("report", "status", "actor", "created_at")
    list_filter = ("status",)


# --------------------------------------------------------------------------------------------
# Evals, golden samples, procurement baselines (uploads go through contracts.evals)
# --------------------------------------------------------------------------------------------


@admin.register(models.EvalSuite)
class EvalSuiteAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "owner", "tolerances", "lower_is_better")
    list_filter = ("owner",)
    search_fields = ("slug", "name")


@admin.register(models.EvalResult)
class EvalResultAdmin(ServiceAdmin):
    """Results are evidence: added through the validated upload, never edited afterwards."""

    list_display = ("suite", "snapshot", "created_at", "uploaded_by")
    list_filter = ("suite", "snapshot__family")
    search_fields = ("suite__slug", "snapshot__name")
    fields = ("suite", "snapshot", "scores", "cases")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        result = self.run_service(
            request,
            eval_services.eval_result_upload,
            suite=obj.suite.slug,
            snapshot=obj.snapshot.name,
            scores=form.cleaned_data.get("scores"),
            cases=form.cleaned_data.get("cases"),
            acting_user=request.user,
        )
        if result is not None:
            obj.pk = result.pk

    def save_related(self, request, form, formsets, change):
        if form.instance.pk:
            super().save_related(request, form, formsets, change)


@admin.register(models.GoldenSample)
class GoldenSampleAdmin(ServiceAdmin):
    list_display = ("snapshot", "prompt_id")
    list_filter = ("snapshot__family", "snapshot")
    search_fields = ("prompt_id", "prompt", "output")

    def save_model(self, request, obj, form, change):
        stored = self.run_service(
            request,
            eval_services.golden_samples_upload,
            snapshot=obj.snapshot,
            samples=[{"prompt_id": obj.prompt_id, "prompt": obj.prompt, "output": obj.output}],
        )
        if stored:
            obj.pk = stored[0].pk


@admin.register(models.ProcurementBaseline)
class ProcurementBaselineAdmin(ReadOnlyAdmin):
    """Marked by the organisation's admins in the portal (a ledger record); staff only read them."""

    list_display = ("organization", "suite", "result", "marked_at", "marked_by")
    list_filter = ("organization", "suite")


@admin.register(models.LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("organization", "seq", "head_hash", "created_at", "key_id")
    list_filter = ("organization",)


@admin.register(models.ConsentExport)
class ConsentExportAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "organization",
        "format",
        "status",
        "progress",
        "record_count",
        "requested_by",
        "created_at",
    )
    list_filter = ("format", "status", "organization")
    readonly_fields = ("file_sha256", "filters", "error", "file_path", "expires_at")


@admin.register(models.LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdmin):
    """What the daily ledger verification found last (only the beat task writes it)."""

    list_display = ("organization", "intact", "checked_at", "broken_seq", "alerted_at")
    list_filter = ("intact",)
    search_fields = ("organization__slug",)


# --------------------------------------------------------------------------------------------
# The data plane: gateways, their receipt keys, the pin map's change log, usage batches
# --------------------------------------------------------------------------------------------


class GatewayReceiptKeyInline(admin.TabularInline):
    model = models.GatewayReceiptKey
    extra = 0
    fields = ("key_id", "created_at", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.Gateway)
class GatewayAdmin(ServiceAdmin):
    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "prefix", "created_at", "created_by", "last_used_at", "revoked_at")
    inlines = [GatewayReceiptKeyInline]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        ro = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
        return ro if obj is None else [*ro, "name"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        result = self.run_service(
            request, gateway_services.gateway_create, name=obj.name, acting_user=request.user
        )
        if result is not None:
            gateway, raw = result
            obj.pk = gateway.pk
            self.message_user(
                request, f"gateway-key: {raw} name={gateway.name} (shown once)", level=messages.WARNING
            )

    @admin.action(description="Revoke selected gateways (and their receipt keys)")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for gateway in queryset:
            gateway_services.gateway_revoke(gateway=gateway)
        self.message_user(request, f"Revoked {queryset.count()} gateway(s).")


@admin.register(models.GatewayReceiptKey)
class GatewayReceiptKeyAdmin(ReadOnlyAdmin):
    list_display = ("key_id", "gateway", "created_at", "revoked_at")
    list_filter = ("gateway",)
    search_fields = ("key_id",)
    actions = ["revoke"]

    @admin.action(description="Revoke selected receipt keys (receipts signed after now stop verifying)")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        for key in queryset:
            gateway_services.receipt_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} receipt key(s).")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None  # the changelist (and its action) stays available; rows stay read-only


@admin.register(models.PinMapChange)
class PinMapChangeAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "organization", "alias", "snapshot", "cause", "created_at")
    list_filter = ("kind",)


@admin.register(models.UsageBatch)
class UsageBatchAdmin(ReadOnlyAdmin):
    list_display = ("batch_id", "gateway", "rows", "requests", "dropped", "received_at")
    list_filter = ("gateway",)


# Renewal and audit (docs/renewal-and-audit.md): staff follow refresh runs and audit packs, and revoke
# runner keys. Runners are registered with `manage.py create_eval_runner` (the key is shown once there).
@admin.register(models.EvalRunner)
class EvalRunnerAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "created_at", "last_seen_at", "revoked_at")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff

    @admin.action(description="Revoke the selected runner keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = renewal_services.eval_runners_revoke(runners=list(queryset))
        self.message_user(request, f"Revoked {revoked} runner key(s).")


@admin.register(models.EvalRun)
class EvalRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "organization",
        "suite",
        "snapshot",
        "state",
        "progress",
        "attempts",
        "runner",
        "requested_at",
    )
    list_filter = ("state",)


@admin.register(models.AuditPack)
class AuditPackAdmin(ReadOnlyAdmin):
    list_display = ("id", "organization", "status", "progress", "created_at", "finished_at")
    list_filter = ("status",)


@admin.register(models.AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Customers' audit logs and the vendor-side log (no organisation: staff actions in /admin/)."""

    list_display = (
        "created_at",
        "organization",
        "actor_label",
        "action",
        "target_type",
        "target_label",
        "ip",
    )
    list_filter = ("action", "actor_kind", ("organization", admin.EmptyFieldListFilter))
    search_fields = ("actor_label", "target_label", "target_id")
    date_hierarchy = "created_at"
    list_select_related = ("organization",)


@admin.register(models.OrgDomain)
class OrgDomainAdmin(ServiceAdmin):
    """Staff verify the domains organisation admins claim (e.g. after checking a DNS TXT record)."""

    list_display = ("domain", "organization", "created_at", "verified_at")
    list_filter = (("verified_at", admin.EmptyFieldListFilter),)
    search_fields = ("domain", "organization__slug")
    readonly_fields = ("organization", "domain", "created_at", "verified_at")
    actions = ["verify"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Verify the selected domains (the organisation owns them)")
    def verify(self, request: HttpRequest, queryset: QuerySet) -> None:
        for domain in queryset:
            self.run_service(
                request, identity_services.org_domain_verify, domain=domain, acting_user=request.user
            )


@admin.register(models.IdentitySettings)
class IdentitySettingsAdmin(ReadOnlyAdmin):
    list_display = ("organization", "sso_issuer", "sso_provider_id", "require_sso", "require_mfa_for_admins")


@admin.register(models.ScimToken)
class ScimTokenAdmin(ReadOnlyAdmin):
    list_display = ("organization", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("organization",)


@admin.register(models.ScimUser)
class ScimUserAdmin(ReadOnlyAdmin):
    list_display = ("organization", "user", "external_id", "active", "updated_at")
    list_select_related = ("organization", "user")


@admin.register(models.ScimGroup)
class ScimGroupAdmin(ReadOnlyAdmin):
    list_display = ("organization", "display_name", "role", "updated_at")
    list_select_related = ("organization",)
