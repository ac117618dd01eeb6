"""Demo data for notifications: named contacts, one webhook endpoint per demo organisation, a
calendar token, and the notices due now planned and sent (to the local outbox in `make run`).
Idempotent: the outbox's unique constraints make a second run plan and send nothing new."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from contracts.models import Organization, Role
from notifications import services, webhooks
from notifications.models import CalendarToken, Contact, Milestone, Notice, NoticeStatus, WebhookEndpoint
from notifications.tasks import send_notice

DEMO_SLUGS = ("acme", "globex", "initech")


def seed_notifications() -> list[str]:
    lines: list[str] = []
    for slug in DEMO_SLUGS:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            continue
        Contact.objects.get_or_create(
            organization=org, email=f"procurement@{slug}.example", defaults={"name": "Procurement desk"}
        )
        # The demo receiver that `make run` starts on loopback (the SSRF filter allows that port only
        # with DEBUG on), so the delivery log shows real deliveries.
        demo_endpoint = {
            "url": f"http://127.0.0.1:{settings.DEMO_WEBHOOK_PORT}/hooks/{slug}",
            "events": [
                "snapshot.deprecated",
                "migration.proposed",
                "snapshot.retired",
                "migration.applied",
                "migration.rolled_back",
                "pin.moved",
            ],
            "description": "Demo endpoint (the demo webhook receiver on loopback)",
        }
        WebhookEndpoint.objects.update_or_create(
            organization=org,
            description__startswith="Demo endpoint",
            defaults=demo_endpoint,
            create_defaults={**demo_endpoint, "secret": webhooks.secret_generate()},
        )
        if not CalendarToken.objects.filter(organization=org, revoked_at__isnull=True).exists():
            services.calendar_token_regenerate(org=org)
    services.notices_plan()
    for notice_id in services.notices_due_ids():
        send_notice.apply(args=[notice_id])
    # One acknowledged legal notice, so the portal shows both states.
    first = (
        Notice.objects.filter(
            organization__slug="acme", legal=True, status=NoticeStatus.SENT, channel="email"
        )
        .exclude(milestone=Milestone.ESCALATION)
        .order_by("id")
        .first()
    )
    if first is not None and first.acknowledged_at is None:
        legal = org_member_email(first.organization, Role.LEGAL)
        Notice.objects.filter(pk=first.pk).update(acknowledged_at=timezone.now(), acknowledged_by_email=legal)
    return lines


def org_member_email(org: Organization, role: str) -> str:
    membership = org.memberships.filter(role=role).select_related("user").first()
    return membership.user.email if membership else ""
