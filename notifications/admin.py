from django.contrib import admin

from notifications.models import (
    CalendarToken,
    Contact,
    Notice,
    Unsubscription,
    WebhookDelivery,
    WebhookEndpoint,
)


@admin.register(Notice)
class NoticeAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "organization",
        "milestone",
        "channel",
        "status",
        "due_at",
        "sent_at",
        "attempts",
        "acknowledged_at",
    ]
    list_filter = ["status", "channel", "milestone", "legal"]
    search_fields = ["organization__slug", "subject", "dedupe_key"]
    raw_id_fields = ["organization", "snapshot", "migration", "escalated_from", "acknowledged_by"]
    date_hierarchy = "due_at"


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "organization", "created_at"]
    search_fields = ["email", "organization__slug"]


@admin.register(Unsubscription)
class UnsubscriptionAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "created_at"]
    search_fields = ["email"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "organization", "active", "created_at", "secret_rotated_at"]
    list_filter = ["active"]
    exclude = ["secret", "previous_secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["msg_id", "event_type", "endpoint", "status", "attempts", "response_status", "created_at"]
    list_filter = ["status", "event_type"]
    raw_id_fields = ["endpoint", "notice"]


@admin.register(CalendarToken)
class CalendarTokenAdmin(admin.ModelAdmin):
    list_display = ["organization", "created_at", "revoked_at"]
    exclude = ["token"]
