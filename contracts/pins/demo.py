"""Demo pins: each demo organisation's aliases, with every upgrade policy."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from contracts.models import (
    Alias,
    Organization,
    Pin,
    Snapshot,
    UpgradePolicy,
)
from contracts.pins.services import pin_set

# org slug -> [(alias, snapshot, policy)]
PINS = {
    "acme": [
        ("v1-chat", "chat-2025-06-01", UpgradePolicy.MANUAL),
        ("chat-latest", "chat-2025-09-29", UpgradePolicy.FOLLOW),
        ("v1-embed", "embed-2024-09-10", UpgradePolicy.ON_RETIREMENT),
        ("v1-code", "code-2025-01-20", UpgradePolicy.MANUAL),
    ],
    "globex": [
        ("v1-chat", "chat-2024-11-15", UpgradePolicy.ON_RETIREMENT),
        ("v1-embed", "embed-2025-08-20", UpgradePolicy.FOLLOW),
    ],
    "initech": [
        ("v1-chat", "chat-2025-09-29", UpgradePolicy.FOLLOW),
        ("v1-code", "code-2025-10-05", UpgradePolicy.MANUAL),
    ],
}


@transaction.atomic
def seed_pins() -> list[str]:
    for slug, pins in PINS.items():
        org = Organization.objects.get(slug=slug)
        for alias_name, snapshot_name, policy in pins:
            alias = Alias.objects.get(name=alias_name)
            if Pin.objects.filter(organization=org, alias=alias).exists():
                continue
            snapshot = Snapshot.objects.get(name=snapshot_name)
            pin_set(
                org=org,
                alias=alias,
                snapshot=snapshot,
                policy=policy,
                reason="onboarding",
                at=max(snapshot.released_at, alias.created_at) + dt.timedelta(days=2),
            )
    return []
