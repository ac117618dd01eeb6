"""Demo data of billing: extended support offered on the deprecated chat snapshot, and one grant."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from contracts.billing import services as billing
from contracts.catalog import services
from contracts.models import ExtendedSupport, Organization, Snapshot

OFFERS = {
    # snapshot: demo price id (extended support until 120 days after retirement)
    "chat-2025-06-01": "price_demo_extended_support_chat_2025_06_01",
    "chat-2024-11-15": "price_demo_extended_support_chat_2024_11_15",
}
GRANT = ("globex", "chat-2024-11-15", "cs_demo_globex_chat_2024_11_15")


@transaction.atomic
def seed_billing() -> list[str]:
    for name, price_id in OFFERS.items():
        snapshot = Snapshot.objects.filter(name=name).first()
        if snapshot is None or snapshot.extended_support_offered or snapshot.retires_at is None:
            continue
        services.snapshot_update(
            snapshot=snapshot,
            data={
                "extended_support_offered": True,
                "extended_support_until": snapshot.retires_at + dt.timedelta(days=120),
                "extended_support_price_id": price_id,
            },
        )
    slug, snapshot_name, session_id = GRANT
    org = Organization.objects.filter(slug=slug).first()
    snapshot = Snapshot.objects.filter(name=snapshot_name).first()
    if (
        org is not None
        and snapshot is not None
        and not ExtendedSupport.objects.filter(stripe_checkout_session_id=session_id).exists()
    ):
        billing.extended_support_grant(org=org, snapshot=snapshot, checkout_session_id=session_id)
    return []
