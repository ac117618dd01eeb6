from __future__ import annotations

import datetime as dt
import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.catalog import services as catalog_services
from contracts.errors import NotFound
from contracts.models import PinChange, UpgradePolicy
from contracts.pins import selectors
from contracts.pins import services as pins_services
from contracts.tenancy import services as tenancy_services
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_resolve_now_serves_the_pin_not_the_alias_default(world):
    resolution = selectors.resolve(org=world.org, alias="v1-chat")
    assert resolution.snapshot["id"] == world.old.name
    assert resolution.source == "pin"


def test_organisation_without_pin_is_served_the_alias_default(world):
    lonely = f.OrganizationFactory(slug="lonely")
    resolution = selectors.resolve(org=lonely, alias="v1-chat")
    assert resolution.snapshot["id"] == world.current.name
    assert resolution.source == "alias-default"


def test_time_travel_follows_pin_history_then_alias_history(world):
    lonely = f.OrganizationFactory(slug="lonely")
    # Before the alias moved, the alias default was the old snapshot.
    assert selectors.resolve(org=lonely, alias="v1-chat", at=f.days(-95)).snapshot["id"] == world.old.name
    assert selectors.resolve(org=lonely, alias="v1-chat", at=f.days(-85)).snapshot["id"] == world.current.name
    # acme pinned old at -150; move it to current now and look back.
    pins_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current, reason="upgrade")
    assert selectors.resolve(org=world.org, alias="v1-chat", at=f.days(-10)).snapshot["id"] == world.old.name
    assert selectors.resolve(org=world.org, alias="v1-chat").snapshot["id"] == world.current.name
    # Before the pin existed, the alias history answers.
    assert selectors.resolve(org=world.org, alias="v1-chat", at=f.days(-160)).source == "alias-default"


def test_resolve_before_the_alias_existed_is_not_found(world):
    with pytest.raises(NotFound) as exc:
        selectors.resolve(org=world.org, alias="v1-chat", at=f.days(-500))
    assert "did not exist" in exc.value.message


def test_warm_resolve_over_the_api_makes_zero_queries(world, api):
    url = "/api/v1/resolve/v1-chat/"
    assert api.get(url, key=world.key).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, key=world.key)
    assert response.status_code == 200
    assert response.json()["snapshot"]["id"] == world.old.name
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_pin_change_is_seen_by_the_next_resolve(world, api):
    url = "/api/v1/resolve/v1-chat/"
    assert api.get(url, key=world.key).json()["snapshot"]["id"] == world.old.name
    pins_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current, reason="upgrade")
    assert api.get(url, key=world.key).json()["snapshot"]["id"] == world.current.name


def test_alias_move_is_seen_by_the_next_resolve_of_a_follower(world, api):
    newest = f.SnapshotFactory(family=world.family, name="chat-2025-09-01", released_at=f.days(-5))
    url = "/api/v1/resolve/v1-chat/"
    assert api.get(url, key=world.other_key).json()["snapshot"]["id"] == world.current.name
    catalog_services.alias_move(alias=world.alias, to_snapshot=newest, reason="new default")
    assert api.get(url, key=world.other_key).json()["snapshot"]["id"] == newest.name


def test_deprecated_snapshot_carries_deprecation_sunset_and_link_headers(world, api):
    deprecated_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    world.old.deprecated_at = deprecated_at
    world.old.retires_at = dt.datetime(2099, 3, 1, 12, 0, tzinfo=dt.UTC)
    world.old.replacement = world.current
    world.old.save(update_fields=["deprecated_at", "retires_at", "replacement"])
    response = api.get("/api/v1/resolve/v1-chat/", key=world.key)
    assert response["Deprecation"] == f"@{int(deprecated_at.timestamp())}"
    assert response["Sunset"] == "Sun, 01 Mar 2099 12:00:00 GMT"
    assert 'rel="deprecation"' in response["Link"]
    assert f'/api/v1/snapshots/{world.current.name}/>; rel="successor-version"' in response["Link"]


def test_active_snapshot_has_no_deprecation_headers(world, api):
    response = api.get("/api/v1/resolve/v1-chat/", key=world.key)
    assert "Deprecation" not in response and "Sunset" not in response


@pytest.mark.parametrize(
    ("at", "status", "field"),
    [("yesterday", 400, "at"), ("2025-13-45T00:00:00Z", 400, "at"), ("2025-06-01T00:00:00", 400, "at")],
)
def test_malformed_at_is_refused_naming_the_field(world, api, at, status, field):
    response = api.get(f"/api/v1/resolve/v1-chat/?at={at}", key=world.key)
    assert response.status_code == status
    assert field in response.json()["error"]["fields"]
    assert (
        "ISO 8601" in response.json()["error"]["message"]
        or "time zone" in response.json()["error"]["message"]
    )


def test_unknown_alias_is_404_in_the_envelope(world, api):
    response = api.get("/api/v1/resolve/nope/", key=world.key)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_at_before_alias_existed_is_404_saying_so(world, api):
    response = api.get("/api/v1/resolve/v1-chat/?at=2001-01-01T00:00:00Z", key=world.key)
    assert response.status_code == 404
    assert "did not exist" in response.json()["error"]["message"]


def test_bad_input_writes_nothing(world, api):
    before = PinChange.objects.count()
    api.get("/api/v1/resolve/v1-chat/?at=bad", key=world.key)
    api.get("/api/v1/resolve/nope/", key=world.key)
    api.get("/api/v1/pins/", key="vcp_unknown")
    assert PinChange.objects.count() == before


def test_revoked_and_unknown_keys_get_401(world, api):
    from contracts.models import ApiKey

    assert api.get("/api/v1/pins/", key=world.key).status_code == 200
    tenancy_services.api_key_revoke(api_key=ApiKey.objects.get(key_hash=ApiKey.hash_key(world.key)))
    response = api.get("/api/v1/pins/", key=world.key)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert api.get("/api/v1/pins/", key="vcp_nonsense").status_code == 401


def test_key_records_last_use(world, api):
    from contracts.models import ApiKey

    api.get("/api/v1/pins/", key=world.key)
    assert ApiKey.objects.get(key_hash=ApiKey.hash_key(world.key)).last_used_at is not None


def test_throttle_limits_a_key(world, api, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "3/min"}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        codes = [api.get("/api/v1/pins/", key=world.key).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        assert codes[3] == 429
        assert api.get("/api/v1/pins/", key=world.other_key).status_code == 200
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original


def test_policy_is_part_of_time_travel(world):
    pins_services.pin_policy_change(pin=world.pin, policy=UpgradePolicy.FOLLOW)
    assert selectors.resolve(org=world.org, alias="v1-chat").policy == UpgradePolicy.FOLLOW


def test_warm_path_answers_exactly_like_the_full_view(world, api):
    world.old.deprecated_at = f.days(-1)
    world.old.retires_at = f.days(100)
    world.old.replacement = world.current
    world.old.save(update_fields=["deprecated_at", "retires_at", "replacement"])
    api.get("/api/v1/resolve/v1-chat/", key=world.key)
    warm = api.get("/api/v1/resolve/v1-chat/", key=world.key)
    full = api.get("/api/v1/resolve/v1-chat/?full=1", key=world.key)  # a query string takes the DRF path
    assert warm.content == full.content
    for header in ("Content-Type", "Deprecation", "Sunset", "Link"):
        assert warm[header] == full[header]


def test_revoked_key_is_refused_by_the_warm_path_at_once(world, api):
    from contracts.models import ApiKey

    assert api.get("/api/v1/resolve/v1-chat/", key=world.key).status_code == 200
    assert api.get("/api/v1/resolve/v1-chat/", key=world.key).status_code == 200
    tenancy_services.api_key_revoke(api_key=ApiKey.objects.get(key_hash=ApiKey.hash_key(world.key)))
    assert api.get("/api/v1/resolve/v1-chat/", key=world.key).status_code == 401


def test_warm_path_expires_at_the_next_lifecycle_date(world, api):
    import time_machine

    world.old.deprecated_at = f.days(1)
    world.old.save(update_fields=["deprecated_at"])
    assert api.get("/api/v1/resolve/v1-chat/", key=world.key).json()["snapshot"]["status"] == "active"
    with time_machine.travel(f.days(2), tick=False):
        response = api.get("/api/v1/resolve/v1-chat/", key=world.key)
    assert response.json()["snapshot"]["status"] == "deprecated"
    assert "Deprecation" in response


@pytest.mark.parametrize("org", ["acme\x00", "../x", "a" * 65])
def test_malformed_org_parameter_is_refused_naming_the_field(world, client, org):
    client.force_login(world.admin)
    response = client.get("/api/v1/pins/", {"org": org})
    assert response.status_code == 400
    assert "org" in response.json()["error"]["fields"]


@pytest.mark.redis
@pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL=redis://… (CI services run)"
)
def test_a_warm_resolve_on_redis_costs_one_redis_command_and_still_sees_a_pin_change(world, api, monkeypatch):
    """The generation check and the shared throttle counter travel in one EVALSHA; a regression to
    two round trips (the cache proxy hid the Redis backend from the check) cut resolve's rate."""
    import redis.connection

    commands = []
    real = redis.connection.AbstractConnection.send_command

    def spy(self, *args, **kwargs):
        commands.append(args[0])
        return real(self, *args, **kwargs)

    url = "/api/v1/resolve/v1-chat/"
    for _ in range(2):
        assert api.get(url, key=world.key).status_code == 200  # warm this process's copies
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", spy)
    assert api.get(url, key=world.key).json()["snapshot"]["id"] == world.old.name
    assert commands == ["EVALSHA"]
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", real)
    pins_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current, acting_user=world.admin)
    assert api.get(url, key=world.key).json()["snapshot"]["id"] == world.current.name
