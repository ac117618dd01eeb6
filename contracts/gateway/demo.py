"""Demo data of the data plane: the demo gateway with its fixed key (make run starts it on :8001),
and a few weeks of hourly usage, so the usage report has history before the demo gateway adds to it."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import transaction
from django.utils import timezone

from contracts.gateway import services
from contracts.models import Alias, Gateway, Organization, Pin, UsageBatch

DEMO_GATEWAY = "demo-gateway"
DEMO_GATEWAY_KEY = "vcpgw_demogateway" + "0" * 26
HISTORY_DAYS = 35


def _history_rows(now: dt.datetime) -> list[dict]:
    """Deterministic hourly counts per pin of the demo organisations, every 6 hours."""
    rows = []
    pins = Pin.objects.select_related("organization", "alias", "snapshot").order_by(
        "organization__slug", "alias__name"
    )
    first = (now - dt.timedelta(days=HISTORY_DAYS)).replace(minute=0, second=0, microsecond=0)
    for pin in pins:
        for step in range(0, HISTORY_DAYS * 24, 6):
            hour = first + dt.timedelta(hours=step)
            if hour > now:
                break
            seed = hashlib.sha256(f"{pin.organization.slug}:{pin.alias.name}:{step}".encode()).digest()
            rows.append(
                {
                    "org": pin.organization.slug,
                    "alias": pin.alias.name,
                    "snapshot": pin.snapshot.name,
                    "hour": hour.isoformat(),
                    "requests": 40 + seed[0] * 3,
                }
            )
    # One organisation also calls an alias it never pinned: the alias default serves it.
    default = Alias.objects.select_related("target").filter(name="chat-latest").first()
    org = Organization.objects.filter(slug="globex").first()
    if default is not None and org is not None:
        for step in range(0, HISTORY_DAYS * 24, 12):
            rows.append(
                {
                    "org": org.slug,
                    "alias": default.name,
                    "snapshot": default.target.name,
                    "hour": (first + dt.timedelta(hours=step)).isoformat(),
                    "requests": 25,
                }
            )
    return rows


@transaction.atomic
def seed_gateway() -> list[str]:
    gateway = Gateway.objects.filter(name=DEMO_GATEWAY).first()
    if gateway is None:
        gateway, _ = services.gateway_create(name=DEMO_GATEWAY, raw_key=DEMO_GATEWAY_KEY)
    if not UsageBatch.objects.filter(gateway=gateway, batch_id="demo-history").exists():
        rows = _history_rows(timezone.now())
        for start in range(0, len(rows), services.MAX_USAGE_ROWS):
            batch_id = "demo-history" if start == 0 else f"demo-history-{start}"
            services.usage_ingest(
                gateway=gateway, batch_id=batch_id, rows=rows[start : start + services.MAX_USAGE_ROWS]
            )
    return [f"gateway-key: {DEMO_GATEWAY_KEY} name={DEMO_GATEWAY}"]
