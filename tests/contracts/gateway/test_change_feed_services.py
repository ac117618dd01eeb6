"""The change feed on the production services: a long-poll waiting in another process is woken by
PostgreSQL LISTEN/NOTIFY, or by Redis pub/sub, not by polling (the portal polls only every 30 s here)."""

from __future__ import annotations

import os
import time

import pytest
from vcp_gateway import PinMap

from contracts.pins import services as pin_services
from tests.conftest import requires_postgres
from tests.contracts.gateway.test_live_portal import small_world, wait_until  # noqa: F401 (fixture)

requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL", "").startswith("redis"),
    reason="needs Redis: set REDIS_URL=redis://… (CI services run)",
)


def _change_reaches_a_waiting_gateway(portal, world) -> float:
    pin_map = PinMap(portal.url, world["key"], wait=30)
    pin_map.start()
    try:
        wait_until(lambda: pin_map.ready, timeout=10)
        time.sleep(0.5)  # the long-poll is waiting at the portal
        pin_services.pin_set(org=world["org"], alias=world["alias"], snapshot=world["new"])
        return wait_until(lambda: pin_map.resolve("acme", "v1-chat").snapshot == "chat-b", timeout=10)
    finally:
        pin_map.stop()


@pytest.mark.postgres
@requires_postgres
def test_postgres_notify_wakes_a_long_poll_in_another_process(live_portal, small_world):  # noqa: F811
    portal = live_portal(PIN_MAP_WAKEUP="postgres", PIN_MAP_POLL_SECONDS="30")
    elapsed = _change_reaches_a_waiting_gateway(portal, small_world)
    assert elapsed < 5, portal.log()


@pytest.mark.redis
@requires_redis
def test_redis_pubsub_wakes_a_long_poll_in_another_process(live_portal, small_world, settings):  # noqa: F811
    settings.PIN_MAP_WAKEUP = "redis"
    settings.PIN_MAP_REDIS_URL = os.environ["REDIS_URL"]
    portal = live_portal(
        PIN_MAP_WAKEUP="redis", PIN_MAP_POLL_SECONDS="30", PIN_MAP_REDIS_URL=os.environ["REDIS_URL"]
    )
    elapsed = _change_reaches_a_waiting_gateway(portal, small_world)
    assert elapsed < 5, portal.log()
