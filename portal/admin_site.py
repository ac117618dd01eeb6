"""The staff console's admin site: every add, change and delete is also written to the vendor-side
audit log (AuditEntry without an organisation), which unlike Django's LogEntry is append-only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from contracts.audit.services import audit_record
from contracts.models import AuditAction


def _target(obj) -> dict:
    return {
        "target_type": obj._meta.label_lower,
        "target_id": obj.pk,
        "target_label": str(obj),
    }


def _org_of(obj) -> dict:
    org_id = getattr(obj, "organization_id", None)
    return {"organization_id": org_id} if org_id else {}


class AuditedModelAdmin(admin.ModelAdmin):
    """Mixed in front of every registered ModelAdmin by AuditedAdminSite.register."""

    def log_addition(self, request: HttpRequest, obj, message):
        entry = super().log_addition(request, obj, message)
        if entry is None:  # the admin logged nothing (e.g. a service refused the addition)
            return entry
        audit_record(
            org=None,
            action=AuditAction.ADMIN_ADD,
            **_target(obj),
            after={"change": entry.get_change_message(), **_org_of(obj)},
            acting_user=request.user,
        )
        return entry

    def log_change(self, request: HttpRequest, obj, message):
        entry = super().log_change(request, obj, message)
        if entry is None:
            return entry
        audit_record(
            org=None,
            action=AuditAction.ADMIN_CHANGE,
            **_target(obj),
            after={"change": entry.get_change_message(), **_org_of(obj)},
            acting_user=request.user,
        )
        return entry

    def log_deletions(self, request: HttpRequest, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            audit_record(
                org=None,
                action=AuditAction.ADMIN_DELETE,
                **_target(obj),
                before=_org_of(obj),
                acting_user=request.user,
            )
        return entries


class AuditedAdminSite(admin.AdminSite):
    site_header = "Version Contract Portal: staff console"

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedModelAdmin):
            admin_class = type(admin_class.__name__, (AuditedModelAdmin, admin_class), {})
        super().register(model_or_iterable, admin_class, **options)
