"""The PinMap background thread (long-poll, backoff, stop) and the lifecycle timer."""

from __future__ import annotations

import time

import pytest
from vcp_gateway import Backoff

from tests.gateway.conftest import PIN_MAP
from tests.gateway.helpers import instant, wait_until

NEW_PIN = {"snapshot": "chat-2026-03-02", "policy": "manual", "extended_support_until": None}


def test_long_poll_picks_up_a_change_promptly_and_stop_is_prompt(portal, make_pin_map):
    pin_map = make_pin_map(wait=30)
    pin_map.start()
    wait_until(lambda: portal.requests_to(PIN_MAP)[-1:] and "wait" in portal.requests_to(PIN_MAP)[-1].query)
    assert portal.requests_to(PIN_MAP)[-1].query == {"since": str(portal.revision), "wait": "30"}
    assert "If-None-Match" not in portal.requests_to(PIN_MAP)[-1].headers

    revision = portal.change("pins", "v1-chat", NEW_PIN, org="acme")

    # Far sooner than the 30 s wait: the held request answered as soon as the change landed.
    wait_until(lambda: pin_map.revision == revision, timeout=5, what="the change to arrive")
    assert pin_map.resolve("acme", "v1-chat").snapshot == "chat-2026-03-02"
    wait_until(lambda: len(portal.requests_to(PIN_MAP)) == 3, what="the next long-poll")  # full, poll, poll

    started = time.monotonic()
    pin_map.stop()
    assert time.monotonic() - started < 2, "stop() waited for the long-poll"
    assert pin_map._thread is None


def test_backs_off_while_the_portal_is_down_and_recovers(portal, make_pin_map):
    pin_map = make_pin_map(wait=1)
    pin_map.start()
    wait_until(lambda: pin_map.ready)
    portal.stop()

    wait_until(lambda: pin_map.consecutive_failures >= 3, what="failed attempts")
    assert pin_map.last_error
    assert pin_map.resolve("acme", "v1-chat").snapshot == "chat-2025-09-29"  # still serving

    portal.start()
    revision = portal.change("pins", "v1-chat", NEW_PIN, org="acme")
    wait_until(lambda: pin_map.revision == revision and pin_map.consecutive_failures == 0, what="recovery")
    assert pin_map.last_error is None


def test_backs_off_on_5xx(portal, make_pin_map):
    pin_map = make_pin_map()
    pin_map.sync()
    for _ in range(3):
        portal.script(PIN_MAP, 503, None)

    pin_map.start()

    wait_until(lambda: len(portal.requests_to(PIN_MAP)) == 5, what="three failures, then a long-poll")
    assert [r.status for r in portal.requests_to(PIN_MAP)[1:4]] == [503, 503, 503]
    assert pin_map.consecutive_failures == 3
    revision = portal.change("pins", "v1-chat", NEW_PIN, org="acme")
    wait_until(lambda: pin_map.revision == revision and pin_map.consecutive_failures == 0)


def test_backoff_grows_exponentially_to_its_cap_with_jitter():
    backoff = Backoff(initial=1.0, maximum=8.0)
    for failures, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 8), (10_000, 8)]:
        delays = {backoff.delay(failures) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1  # jittered


def test_start_twice_is_refused(make_pin_map):
    pin_map = make_pin_map()
    pin_map.start()
    with pytest.raises(RuntimeError):
        pin_map.start()
    pin_map.stop()
    pin_map.start()  # a stopped map can start again


def test_status_changes_when_a_lifecycle_instant_passes(portal, synced):
    """No sync needed: the lifecycle timer swaps in a state rebuilt for the new time."""
    soon = {"family": "chat", "released_at": instant(-1), "deprecated_at": instant(seconds=1)}
    portal.change("snapshots", "soon", soon)
    portal.change("aliases", "soon", {"family": "chat", "default": "soon"})
    synced.sync()
    assert synced.resolve("acme", "soon").status == "active"
    assert synced.headers(synced.resolve("acme", "soon")) == {}

    wait_until(lambda: synced.resolve("acme", "soon").status == "deprecated", what="the deprecation instant")
    assert synced.resolve("umbrella", "soon").status == "deprecated"
    assert synced.resolve("nobody", "soon").status == "deprecated"  # an organisation the map does not list
    assert "Deprecation" in synced.headers(synced.resolve("acme", "soon"))
