"""Reads of the notifications app, scoped to one organisation (404 for another's objects), and
the vendor-wide backlog figures that readiness and metrics report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from contracts.errors import NotFound
from contracts.models import Membership, Organization
from notifications.models import (
    CalendarToken,
    Channel,
    Contact,
    DeliveryStatus,
    FeedToken,
    Notice,
    NoticeStatus,
    WebhookDelivery,
    WebhookEndpoint,
)


def notice_list(
    *,
    org: Organization,
    status: str | None = None,
    milestone: str | None = None,
    channel: str | None = None,
) -> QuerySet[Notice]:
    notices = Notice.objects.filter(organization=org).select_related("snapshot")
    if status:
        notices = notices.filter(status=status)
    if milestone:
        notices = notices.filter(milestone=milestone)
    if channel:
        notices = notices.filter(channel=channel)
    return notices.order_by("-due_at", "-id")


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


def feed_token_member(*, token: str) -> tuple[Organization, Any]:
    """(organisation, user) of a live personal feed token whose user is still a member."""
    found = (
        FeedToken.objects.select_related("organization", "user")
        .filter(token=token, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if (
        found is None
        or not Membership.objects.filter(organization=found.organization, user=found.user).exists()
    ):
        raise NotFound("Unknown or revoked feed token.")
    return found.organization, found.user


def feed_token_active(*, org: Organization, user) -> FeedToken | None:
    return FeedToken.objects.filter(organization=org, user=user, revoked_at__isnull=True).first()


def calendar_organization(*, token: str) -> Organization:
    """The organisation of a calendar token: the organisation's own link, or a member's personal
    feed token."""
    if FeedToken.objects.filter(token=token).exists():
        return feed_token_member(token=token)[0]
    found = (
        CalendarToken.objects.select_related("organization")
        .filter(token=token, revoked_at__isnull=True)
        .first()
    )
    if found is None:
        raise NotFound("Unknown or revoked calendar token.")
    return found.organization


# --------------------------------------------------------------------------------------------
# Operations (vendor-wide, never shown to a customer): /readyz and /metrics
# --------------------------------------------------------------------------------------------

_UNSENT = (NoticeStatus.PENDING, NoticeStatus.SENDING)


@dataclass(frozen=True)
class ChannelBacklog:
    channel: str
    pending: int
    failed: int
    oldest_due_age_seconds: float


def notice_backlog(*, at: dt.datetime | None = None) -> list[ChannelBacklog]:
    """Per channel: notices not yet sent, notices given up on, and how long the oldest due unsent
    notice has waited (0 when none is due). One query."""
    at = at or timezone.now()
    rows = {
        row["channel"]: row
        for row in Notice.objects.values("channel").annotate(
            pending=Count("id", filter=Q(status__in=_UNSENT)),
            failed=Count("id", filter=Q(status=NoticeStatus.FAILED)),
            oldest_due=Min("due_at", filter=Q(status__in=_UNSENT, due_at__lte=at)),
        )
    }
    backlog = []
    for channel in Channel.values:
        row = rows.get(channel, {})
        oldest = row.get("oldest_due")
        backlog.append(
            ChannelBacklog(
                channel=channel,
                pending=row.get("pending", 0),
                failed=row.get("failed", 0),
                oldest_due_age_seconds=max(0.0, (at - oldest).total_seconds()) if oldest else 0.0,
            )
        )
    return backlog


def notice_oldest_due_age(*, at: dt.datetime | None = None) -> float:
    """Seconds the oldest due, unsent notice has waited (any channel); 0 when nothing is due."""
    at = at or timezone.now()
    oldest = Notice.objects.filter(status__in=_UNSENT, due_at__lte=at).aggregate(oldest=Min("due_at"))[
        "oldest"
    ]
    return max(0.0, (at - oldest).total_seconds()) if oldest else 0.0


def webhook_failing_by_endpoint(*, since: dt.datetime) -> list[dict]:
    """Per active endpoint with trouble: deliveries given up on since `since`, and deliveries still
    retrying after a failed attempt. Endpoints are named by id and organisation (their URLs may
    carry customers' tokens)."""
    return list(
        WebhookDelivery.objects.filter(
            Q(status=DeliveryStatus.FAILED, last_attempt_at__gte=since)
            | Q(status=DeliveryStatus.PENDING, attempts__gt=0)
        )
        .values("endpoint_id", "endpoint__organization__slug")
        .annotate(
            failed=Count("id", filter=Q(status=DeliveryStatus.FAILED)),
            retrying=Count("id", filter=Q(status=DeliveryStatus.PENDING)),
        )
        .order_by("endpoint_id")
    )


def notice_trail(*, org: Organization) -> list[dict]:
    """The organisation's notices as plain data for contracts (the audit pack), through
    contracts.outbox.organization_notices: one query."""
    notices = (
        Notice.objects.filter(organization=org)
        .select_related("snapshot")
        .order_by("due_at", "id")
        .values(
            "id", "milestone", "channel", "status", "subject", "snapshot__name", "migration_id",
            "due_at", "sent_at", "sent_to", "acknowledged_at", "acknowledged_by_email", "kind",
        )
    )  # fmt: skip
    return [
        {
            "id": n["id"],
            "milestone": n["milestone"],
            "kind": n["kind"],
            "channel": n["channel"],
            "status": n["status"],
            "subject": n["subject"],
            "snapshot": n["snapshot__name"] or "",
            "migration_id": n["migration_id"],
            "due_at": n["due_at"],
            "sent_at": n["sent_at"],
            "sent_to": list(n["sent_to"] or []),
            "acknowledged_at": n["acknowledged_at"],
            "acknowledged_by": n["acknowledged_by_email"],
        }
        for n in notices
    ]
