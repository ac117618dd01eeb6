"""PinMap.sync() against the fake portal: full map, deltas, 304, 410 and the errors."""

from __future__ import annotations

import pytest
from vcp_gateway import PinMap, PinMapNotReady, PortalRefused, PortalUnavailable, ProtocolError, UnknownAlias

from tests.gateway.conftest import PIN_MAP
from tests.gateway.helpers import instant


def test_first_sync_fetches_the_full_map(portal, make_pin_map):
    pin_map = make_pin_map()
    assert not pin_map.ready
    assert (pin_map.revision, pin_map.last_synced_at, pin_map.staleness()) == (None, None, None)

    assert pin_map.sync() is True

    [request] = portal.requests_to(PIN_MAP)
    assert request.query == {}
    assert "If-None-Match" not in request.headers
    assert request.headers["Authorization"] == "Bearer vcp_gw_test_key_0000000000000000"
    assert pin_map.ready
    assert pin_map.revision == portal.revision
    assert pin_map.staleness() < 5
    assert pin_map.resolve("acme", "v1-chat").snapshot == "chat-2025-09-29"


def test_later_syncs_ask_for_a_delta(portal, synced):
    assert synced.sync() is False  # nothing changed

    request = portal.requests_to(PIN_MAP)[-1]
    assert request.query == {"since": str(portal.revision)}
    assert request.headers["If-None-Match"] == f'"{portal.revision}"'
    assert request.status == 304


def test_delta_sets_entries(portal, synced):
    pin = {"snapshot": "chat-2026-03-02", "policy": "manual", "extended_support_until": None}
    portal.change("pins", "v1-chat", pin, org="acme")
    portal.change("aliases", "v2-chat", {"family": "chat", "default": "chat-2026-03-02"})
    revision = portal.change("pins", "v2-chat", {**pin, "policy": "follow"}, org="newco")

    assert synced.sync() is True

    assert portal.requests_to(PIN_MAP)[-1].query == {"since": str(revision - 3)}
    assert synced.revision == revision
    moved = synced.resolve("acme", "v1-chat")
    assert (moved.snapshot, moved.status, moved.source, moved.policy) == (
        "chat-2026-03-02",
        "active",
        "pin",
        "manual",
    )
    assert synced.resolve("newco", "v2-chat").policy == "follow"
    assert synced.resolve("newco", "v1-chat").source == "alias-default"


def test_delta_nulls_remove_entries(portal, synced):
    portal.change("pins", "v1-chat", None, org="acme")
    portal.change("aliases", "chat-preview", None)

    assert synced.sync() is True

    after = synced.resolve("acme", "v1-chat")
    assert (after.snapshot, after.source, after.policy) == ("chat-2026-03-02", "alias-default", None)
    with pytest.raises(UnknownAlias):
        synced.resolve("acme", "chat-preview")


def test_unpublished_snapshot_is_never_replaced_by_the_default(portal, synced):
    portal.change("snapshots", "chat-2025-09-29", None)  # acme's pin now names a snapshot the map lacks

    synced.sync()

    with pytest.raises(LookupError, match="chat-2025-09-29"):
        synced.resolve("acme", "v1-chat")
    assert synced.resolve("umbrella", "v1-chat").snapshot == "chat-2026-03-02"


def test_unchanged_full_map_reports_no_change(portal, synced):
    portal.script(PIN_MAP, 410, {"error": {"code": "revision_gone", "message": "gone", "fields": {}}})

    assert synced.sync() is False  # 410, then a full map equal to what the gateway has

    assert [r.status for r in portal.requests_to(PIN_MAP)[-2:]] == [410, 304]


def test_410_falls_back_to_the_full_map(portal, synced):
    stale = synced.revision
    revision = portal.change("pins", "v1-chat", None, org="acme")
    portal.forget_changes()

    assert synced.sync() is True

    gone, full = portal.requests_to(PIN_MAP)[-2:]
    assert (gone.query, gone.status) == ({"since": str(stale)}, 410)
    assert (full.query, full.status) == ({}, 200)
    assert full.headers["If-None-Match"] == f'"{stale}"'
    assert synced.revision == revision
    assert synced.resolve("acme", "v1-chat").source == "alias-default"


def test_400_for_an_unknown_revision_falls_back_to_the_full_map(portal, synced):
    """A portal restored from a backup no longer knows the gateway's revision: start over."""
    portal.script(PIN_MAP, 400, {"error": {"code": "invalid", "message": "since is ahead", "fields": {}}})

    assert synced.sync() is False

    assert [r.query for r in portal.requests_to(PIN_MAP)[-2:]] == [{"since": str(synced.revision)}, {}]


def test_full_map_replaces_everything(portal, synced):
    portal.map["pins"] = {"acme": {}}
    portal.revision += 1
    portal.forget_changes()

    assert synced.sync() is True

    assert synced.resolve("acme", "v1-chat").source == "alias-default"
    assert synced.resolve("globex", "v1-chat").source == "alias-default"  # globex is no longer listed


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"<html>", ProtocolError),
        (200, {"version": 2, "revision": 9, "full": True}, ProtocolError),
        (200, {"version": 1, "revision": "9", "full": True}, ProtocolError),
        (
            200,
            {"version": 1, "revision": 9, "full": True, "snapshots": {"x": "not an object"}},
            ProtocolError,
        ),
        (200, {"version": 1, "revision": 9, "full": True, "snapshots": {"x": {"family": "chat"}}}, None),
        (
            200,
            {
                "version": 1,
                "revision": 9,
                "full": True,
                "snapshots": {"x": {"family": "c", "retires_at": "soon"}},
            },
            ProtocolError,
        ),
        (200, {"version": 1, "revision": 9, "full": False, "since": 3}, ProtocolError),
        (503, None, PortalUnavailable),
        (404, {"error": {"code": "not_found", "message": "no such endpoint", "fields": {}}}, PortalRefused),
    ],
)
def test_bad_answers_raise_and_leave_the_map_alone(portal, synced, status, body, error):
    revision = synced.revision
    portal.change("pins", "v1-chat", None, org="acme")
    portal.script(PIN_MAP, status, body)

    if error is None:
        synced.sync()  # a well-formed map the gateway accepts: an entry with optional fields left out
        assert synced.revision == 9
        return
    with pytest.raises(error):
        synced.sync()

    assert synced.revision == revision
    assert synced.resolve("acme", "v1-chat").snapshot == "chat-2025-09-29"


def test_a_wrong_key_is_refused(portal):
    with pytest.raises(PortalRefused) as refused:
        PinMap(portal.url, "not-the-gateway-key").sync()

    assert (refused.value.status, refused.value.code) == (403, "forbidden")


def test_unreachable_portal_raises_portal_unavailable(portal, make_pin_map):
    pin_map = make_pin_map()
    portal.stop()

    with pytest.raises(PortalUnavailable):
        pin_map.sync()

    portal.start()  # the fixture stops it again


def test_resolve_before_any_map_raises(make_pin_map):
    pin_map = make_pin_map()

    with pytest.raises(PinMapNotReady):
        pin_map.resolve("acme", "v1-chat")
    with pytest.raises(LookupError):
        pin_map.resolve("acme", "v1-chat")


def test_a_snapshot_without_dates_is_active(portal, synced):
    portal.change("snapshots", "bare", {"family": "chat", "released_at": None})
    portal.change("aliases", "bare", {"family": "chat", "default": "bare"})
    portal.change("snapshots", "tomorrow", {"family": "chat", "released_at": instant(1)})
    portal.change("aliases", "tomorrow", {"family": "chat", "default": "tomorrow"})

    synced.sync()

    assert synced.resolve("acme", "bare").status == "active"
    assert synced.resolve("acme", "tomorrow").status == "preview"
