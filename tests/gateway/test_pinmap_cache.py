"""The pin map cache file: written after each applied sync, loaded on start, corrupt files ignored."""

from __future__ import annotations

import json
import logging
import os
import stat
import time

import pytest
from vcp_gateway import PortalUnavailable

from tests.gateway.conftest import PIN_MAP


def test_an_applied_sync_writes_the_cache_atomically(portal, make_pin_map, tmp_path):
    path = tmp_path / "state" / "pin-map.json"
    pin_map = make_pin_map(cache_path=path)

    pin_map.sync()

    record = json.loads(path.read_text())
    assert (record["format"], record["revision"], record["etag"]) == (
        1,
        portal.revision,
        f'"{portal.revision}"',
    )
    assert record["saved_at"].endswith("Z")
    assert record["map"]["pins"]["acme"]["v1-chat"]["snapshot"] == "chat-2025-09-29"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["pin-map.json"]  # no temporary file left

    portal.change("pins", "v1-chat", None, org="acme")
    pin_map.sync()
    assert "v1-chat" not in json.loads(path.read_text())["map"]["pins"]["acme"]


def test_restart_while_the_portal_is_down_serves_from_the_cache(portal, make_pin_map, tmp_path):
    path = tmp_path / "pin-map.json"
    make_pin_map(cache_path=path).sync()
    revision = portal.revision
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))
    portal.stop()

    restarted = make_pin_map(cache_path=path)

    assert restarted.ready
    assert restarted.revision == revision
    assert restarted.resolve("acme", "v1-chat").snapshot == "chat-2025-09-29"
    assert 3600 <= restarted.staleness() < 3660
    assert restarted.last_synced_at.timestamp() == pytest.approx(an_hour_ago)
    with pytest.raises(PortalUnavailable):
        restarted.sync()
    assert restarted.resolve("acme", "v1-chat").snapshot == "chat-2025-09-29"
    assert restarted.staleness() >= 3600

    portal.start()
    assert restarted.sync() is False  # a delta from the cached revision, not the full map
    assert portal.requests_to(PIN_MAP)[-1].query == {"since": str(revision)}
    assert restarted.staleness() < 5
    assert path.stat().st_mtime > an_hour_ago  # confirmed current: the next restart knows it


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json",
        b'{"format": 1, "revision": 3, "etag": null}',
        b'{"format": 2, "revision": 3, "etag": null, "map": {}}',
        b'{"format": 1, "revision": 3, "etag": null, "map": {"snapshots": [], "aliases": {}, "pins": {}}}',
        b'{"format": 1, "revision": 3, "etag": null, "map": {"aliases": {"a": {"default": 7}}}}',
        b"[]",
    ],
)
def test_a_corrupt_cache_file_is_ignored_with_a_warning(portal, make_pin_map, tmp_path, caplog, content):
    path = tmp_path / "pin-map.json"
    path.write_bytes(content)

    with caplog.at_level(logging.WARNING, logger="vcp_gateway"):
        pin_map = make_pin_map(cache_path=path)

    assert not pin_map.ready
    assert any("pin map cache" in record.getMessage() for record in caplog.records)
    pin_map.sync()  # and the next sync replaces it
    assert json.loads(path.read_text())["revision"] == portal.revision


def test_an_unwritable_cache_is_a_warning_not_a_failure(portal, make_pin_map, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    pin_map = make_pin_map(cache_path=blocker / "pin-map.json")  # its parent is a file

    with caplog.at_level(logging.WARNING, logger="vcp_gateway"):
        assert pin_map.sync() is True

    assert pin_map.ready
    assert any("cannot write the pin map cache" in record.getMessage() for record in caplog.records)
