"""GET /api/v1/gateway/pin-map/: full map, ETag/304, deltas, 410 and 400, long-poll, and who may call it."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from contracts.catalog import services as catalog_services
from contracts.gateway import changelog, selectors
from contracts.models import PinMapChange, UpgradePolicy
from contracts.pins import services as pin_services
from tests import factories as f

URL = "/api/v1/gateway/pin-map/"


def get(client, key, **params):
    return client.get(URL, params, HTTP_AUTHORIZATION=f"Bearer {key}")


def test_full_map_routes_every_org_and_alias_with_lifecycle(client, world, gateway):
    response = get(client, gateway.raw_key)
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1 and body["full"] is True
    assert response["ETag"] == f'"{body["revision"]}"'
    assert body["revision"] == changelog.pin_map_revision() > 0
    assert body["aliases"]["v1-chat"] == {"family": "chat", "default": "chat-2025-06-01"}
    assert body["pins"]["acme"]["v1-chat"] == {
        "snapshot": "chat-2025-01-01",
        "policy": "manual",
        "extended_support_until": None,
    }
    assert body["pins"]["globex"]["v1-chat"]["policy"] == "follow"
    old = body["snapshots"]["chat-2025-01-01"]
    assert old["family"] == "chat" and old["digest"] == f"sha256:{world.old.digest}"


def test_if_none_match_answers_304_without_body(client, world, gateway):
    etag = get(client, gateway.raw_key)["ETag"]
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {gateway.raw_key}", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304 and response.content == b""
    pin_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current)
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {gateway.raw_key}", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200


def test_delta_after_a_pin_change_carries_only_that_pin(client, world, gateway):
    revision = get(client, gateway.raw_key).json()["revision"]
    pin_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current, reason="test")
    response = get(client, gateway.raw_key, since=revision)
    body = response.json()
    assert response.status_code == 200
    assert body["full"] is False and body["since"] == revision and body["revision"] == revision + 1
    assert body["pins"] == {
        "acme": {
            "v1-chat": {"snapshot": "chat-2025-06-01", "policy": "manual", "extended_support_until": None}
        }
    }
    assert set(body["snapshots"]) == {"chat-2025-06-01"} and body["aliases"] == {}
    assert len(response.content) < 2048
    empty = get(client, gateway.raw_key, since=body["revision"]).json()
    assert empty["pins"] == {} and empty["revision"] == body["revision"]


def test_alias_move_and_lifecycle_edit_are_in_the_delta(client, world, gateway):
    revision = get(client, gateway.raw_key).json()["revision"]
    newer = f.SnapshotFactory(family=world.family, name="chat-2025-09-01", released_at=f.days(-5))
    catalog_services.snapshot_publish(snapshot=newer)
    catalog_services.alias_move(alias=world.alias, to_snapshot=newer, reason="newer")
    catalog_services.snapshot_lifecycle_set(
        snapshot=world.old,
        deprecated_at=f.days(-1),
        retires_at=f.days(200),
        retention_until=None,
        replacement=world.current,
    )
    body = get(client, gateway.raw_key, since=revision).json()
    assert body["aliases"]["v1-chat"]["default"] == "chat-2025-09-01"
    assert body["snapshots"]["chat-2025-01-01"]["successor"] == "chat-2025-06-01"
    assert body["snapshots"]["chat-2025-01-01"]["deprecation_url"].endswith(
        "/snapshots/chat-2025-01-01/deprecation/"
    )
    # The page a person reads (the gateway labels it text/html), public: no session needed.
    page = Client().get("/snapshots/chat-2025-01-01/deprecation/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert "chat-2025-09-01" in body["snapshots"]
    # globex follows the alias: its pin moved with it, in the same delta.
    assert body["pins"]["globex"]["v1-chat"]["snapshot"] == "chat-2025-09-01"


def test_pin_map_costs_a_constant_number_of_queries(client, world, gateway):
    for n in range(30):
        org = f.OrganizationFactory(slug=f"bulk{n}")
        f.make_pin(org=org, alias=world.alias, snapshot=world.current, policy=UpgradePolicy.FOLLOW)
    selectors.pin_map_forget()
    with CaptureQueriesContext(connection) as full:
        assert get(client, gateway.raw_key).status_code == 200
    revision = changelog.pin_map_revision()
    for n in range(10):
        pin_services.pin_set(org=world.org, alias=world.alias, snapshot=[world.old, world.current][n % 2])
    with CaptureQueriesContext(connection) as delta:
        assert get(client, gateway.raw_key, since=revision).status_code == 200
    assert len(full) <= 8, [q["sql"] for q in full.captured_queries]
    assert len(delta) <= 8, [q["sql"] for q in delta.captured_queries]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "abc"}, "since"),
        ({"since": "-1"}, "since"),
        ({"since": "0", "wait": "61"}, "wait"),
        ({"wait": "5"}, "wait"),
    ],
)
def test_bad_parameters_answer_400_naming_them(client, world, gateway, params, field):
    response = get(client, gateway.raw_key, **params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_since_ahead_of_the_log_is_400_and_behind_the_retained_log_is_410(client, world, gateway, settings):
    revision = changelog.pin_map_revision()
    assert get(client, gateway.raw_key, since=revision + 5).status_code == 400
    settings.PIN_MAP_CHANGE_RETENTION_DAYS = 0
    pin_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current)
    pruned = changelog.pin_map_changes_prune()
    assert pruned >= 1 and PinMapChange.objects.count() == 1
    response = get(client, gateway.raw_key, since=1)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "revision_gone"
    newest = changelog.pin_map_revision()
    assert get(client, gateway.raw_key, since=newest).status_code == 200
    assert get(client, gateway.raw_key, since=newest - 1).status_code == 200


def test_long_poll_answers_as_soon_as_a_change_commits(transactional_db, client, settings):
    settings.PIN_MAP_POLL_SECONDS = 30  # the wake-up, not the polling, must answer
    world_org = f.OrganizationFactory(slug="acme")
    family = f.FamilyFactory(slug="chat")
    old = f.SnapshotFactory(family=family, name="chat-a", released_at=f.days(-200))
    new = f.SnapshotFactory(family=family, name="chat-b", released_at=f.days(-200))
    alias = f.make_alias(name="v1-chat", target=old)
    f.make_pin(org=world_org, alias=alias, snapshot=old)
    _gateway, key = f.make_gateway()
    revision = changelog.pin_map_revision()

    answers = []

    def long_poll():
        # Its own thread: a thread without a running event loop (Playwright's sync API may leave one
        # marked running in the main thread of the session), like a server's request thread.
        answers.append(get(client, key, since=revision, wait=20))
        connection.close()

    thread = threading.Thread(target=long_poll)
    started = time.monotonic()
    thread.start()
    time.sleep(0.3)  # the long-poll waits at the view: the change must wake it
    pin_services.pin_set(org=world_org, alias=alias, snapshot=new)
    thread.join(timeout=30)
    elapsed = time.monotonic() - started
    (response,) = answers
    assert response.status_code == 200
    assert json.loads(response.content)["pins"]["acme"]["v1-chat"]["snapshot"] == "chat-b"
    assert elapsed < 5


def test_long_poll_without_change_answers_an_empty_delta_after_wait(client, world, gateway):
    revision = changelog.pin_map_revision()
    started = time.monotonic()
    body = get(client, gateway.raw_key, since=revision, wait=1).json()
    assert 0.9 < time.monotonic() - started < 5
    assert body["revision"] == revision and body["pins"] == {} and body["full"] is False


def test_org_key_gets_403_on_gateway_endpoints_and_gateway_key_403_on_customer_ones(
    client, world, gateway, api
):
    assert get(client, world.key).status_code == 403
    assert api.post("/api/v1/gateway/usage/", {"batch_id": "x", "rows": []}, key=world.key).status_code == 403
    for url in ("/api/v1/pins/", "/api/v1/resolve/v1-chat/", "/api/v1/migrations/", "/api/v1/consents/"):
        response = api.get(url, key=gateway.raw_key)
        assert response.status_code == 403, url
        assert "gateway" in response.json()["error"]["message"]
    assert client.get(URL).status_code == 401


def test_revoked_gateway_key_is_refused(client, world, gateway):
    from contracts.gateway import services

    assert get(client, gateway.raw_key).status_code == 200
    services.gateway_revoke(gateway=gateway)
    assert get(client, gateway.raw_key).status_code == 401
