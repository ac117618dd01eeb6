"""Reads of the notifications app, scoped to one organisation (404 for another's objects)."""

from __future__ import annotations

from django.db.models import QuerySet

from contracts.errors import NotFound
from contracts.models import Organization
from notifications.models import CalendarToken, Contact, Notice, WebhookDelivery, WebhookEndpoint


def notice_list(
    *,
    org: Organization,
    status: str | None = None,
    milestone: str | None = None,
    channel: str | None = None,
    limit: int = 100,
) -> list[Notice]:
    notices = Notice.objects.filter(organization=org).select_related("snapshot")
    if status:
        notices = notices.filter(status=status)
    if milestone:
        notices = notices.filter(milestone=milestone)
    if channel:
        notices = notices.filter(channel=channel)
    return list(notices.order_by("-due_at", "-id")[:limit])


def webhook_endpoint_list(*, org: Organization) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=org, active=True).order_by("created_at", "id")


def webhook_endpoint_get(*, org: Organization, webhook_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(organization=org, pk=webhook_id, active=True).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", fields={"webhook_id": webhook_id})
    return endpoint


def webhook_delivery_log(*, org: Organization, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(endpoint__organization=org)
        .select_related("endpoint")
        .order_by("-created_at", "-id")[:limit]
    )


def contact_list(*, org: Organization) -> QuerySet[Contact]:
    return Contact.objects.filter(organization=org).order_by("email")


def contact_get(*, org: Organization, contact_id: int) -> Contact:
    contact = Contact.objects.filter(organization=org, pk=contact_id).first()
    if contact is None:
        raise NotFound("No such contact.", fields={"contact_id": contact_id})
    return contact


def calendar_token_active(*, org: Organization) -> CalendarToken | None:
    return (
        CalendarToken.objects.filter(organization=org, revoked_at__isnull=True)
        .order_by("-created_at")
        .first()
    )


def calendar_organization(*, token: str) -> Organization:
    found = (
        CalendarToken.objects.select_related("organization")
        .filter(token=token, revoked_at__isnull=True)
        .first()
    )
    if found is None:
        raise NotFound("Unknown or revoked calendar token.")
    return found.organization
