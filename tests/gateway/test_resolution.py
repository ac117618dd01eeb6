"""Status and header derivation (docs/data-plane.md, "Resolution in the gateway")."""

from __future__ import annotations

import dataclasses
from email.utils import parsedate_to_datetime

import pytest
from vcp_gateway import MissingSnapshot, UnknownAlias

from tests.gateway.helpers import parse


@pytest.mark.parametrize(
    ("org", "alias", "snapshot", "status", "source", "policy"),
    [
        ("acme", "v1-chat", "chat-2025-09-29", "deprecated", "pin", "manual"),
        ("globex", "v1-chat", "chat-2024-06-01", "deprecated", "pin", "on-retirement"),  # extended support
        ("initech", "v1-chat", "chat-2024-06-01", "retired", "pin", "manual"),
        ("umbrella", "v1-chat", "chat-2026-03-02", "active", "alias-default", None),
        ("acme", "chat-preview", "chat-2027-01-01", "preview", "alias-default", None),
        ("acme", "chat-legacy", "chat-2024-01-01", "purged", "alias-default", None),
        ("not-listed", "v1-chat", "chat-2026-03-02", "active", "alias-default", None),
    ],
)
def test_resolution(synced, org, alias, snapshot, status, source, policy):
    resolution = synced.resolve(org, alias)

    assert (resolution.org, resolution.alias, resolution.family) == (org, alias, "chat")
    assert (resolution.snapshot, resolution.status, resolution.source, resolution.policy) == (
        snapshot,
        status,
        source,
        policy,
    )


def test_resolution_carries_the_lifecycle(portal, synced):
    entry = portal.map["snapshots"]["chat-2025-09-29"]

    resolution = synced.resolve("acme", "v1-chat")

    assert resolution.deprecated_at == parse(entry["deprecated_at"])
    assert resolution.sunset_at == parse(entry["retires_at"])
    assert resolution.retention_until == parse(entry["retention_until"])
    assert resolution.successor == "chat-2026-03-02"
    assert resolution.deprecation_url == entry["deprecation_url"]
    assert resolution.successor_url == entry["successor_url"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolution.snapshot = "something-else"


def test_extended_support_moves_the_sunset_and_defers_retirement(portal, synced):
    extended_until = portal.map["pins"]["globex"]["v1-chat"]["extended_support_until"]

    extended = synced.resolve("globex", "v1-chat")
    plain = synced.resolve("initech", "v1-chat")  # the same snapshot without the grant

    assert (extended.status, plain.status) == ("deprecated", "retired")
    assert extended.sunset_at == parse(extended_until)
    assert plain.sunset_at == parse(portal.map["snapshots"]["chat-2024-06-01"]["retires_at"])
    assert parsedate_to_datetime(synced.headers(extended)["Sunset"]) == extended.sunset_at.replace(
        microsecond=0
    )


def test_headers_of_a_deprecated_snapshot(portal, synced):
    entry = portal.map["snapshots"]["chat-2025-09-29"]

    headers = synced.headers(synced.resolve("acme", "v1-chat"))

    assert headers["Deprecation"] == f"@{int(parse(entry['deprecated_at']).timestamp())}"
    assert headers["Sunset"].endswith(" GMT")
    assert parsedate_to_datetime(headers["Sunset"]) == parse(entry["retires_at"]).replace(microsecond=0)
    assert headers["Link"] == (
        f'<{entry["deprecation_url"]}>; rel="deprecation"; type="text/html", '
        f'<{entry["successor_url"]}>; rel="successor-version"'
    )


def test_headers_of_retired_and_purged_snapshots_without_links(synced):
    retired = synced.headers(synced.resolve("initech", "v1-chat"))
    purged = synced.headers(synced.resolve("acme", "chat-legacy"))

    assert set(retired) == set(purged) == {"Deprecation", "Sunset"}


@pytest.mark.parametrize(("org", "alias"), [("umbrella", "v1-chat"), ("acme", "chat-preview")])
def test_no_headers_for_active_and_preview(synced, org, alias):
    assert synced.headers(synced.resolve(org, alias)) == {}


def test_unknown_alias(synced):
    with pytest.raises(UnknownAlias) as unknown:
        synced.resolve("acme", "v9-chat")

    assert isinstance(unknown.value, LookupError)
    assert (unknown.value.org, unknown.value.alias) == ("acme", "v9-chat")
    with pytest.raises(UnknownAlias):
        synced.resolve("not-listed", "v9-chat")


def test_a_pin_to_a_snapshot_the_map_lacks(portal, synced):
    portal.change("pins", "v1-chat", {"snapshot": "ghost", "policy": "manual"}, org="umbrella")
    portal.change("aliases", "ghostly", {"family": "chat", "default": "ghost"})
    synced.sync()

    with pytest.raises(MissingSnapshot, match="ghost"):
        synced.resolve("umbrella", "v1-chat")
    for org in ("acme", "not-listed"):
        with pytest.raises(MissingSnapshot):
            synced.resolve(org, "ghostly")
    assert synced.resolve("acme", "v1-chat").snapshot == "chat-2025-09-29"
