"""REST routes of notifications under /api/v1/ (included from portal/urls.py)."""

from django.urls import path

from notifications import api

app_name = "notifications-api"

urlpatterns = [
    path("notices/", api.NoticeListApi.as_view(), name="notice-list"),
    path("webhooks/", api.WebhookListApi.as_view(), name="webhook-list"),
    path("webhooks/<int:webhook_id>/test/", api.WebhookTestApi.as_view(), name="webhook-test"),
    path("calendar.ics", api.CalendarFeedApi.as_view(), name="calendar"),
]
