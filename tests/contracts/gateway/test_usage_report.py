"""The deprecated-usage report (page, API), the dashboard's last use per pin, and the staff view."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.utils import timezone

from contracts.consent.services import migration_propose
from contracts.gateway import selectors
from tests import factories as f
from tests.notifications.conftest import deprecate


def _deprecated_world(world):
    deprecate(world.old, deprecated_at=f.days(-10), retires_at=f.days(20), replacement=world.current)
    migration = migration_propose(pin=world.pin, to_snapshot=world.current)
    now = timezone.now()
    f.record_usage(
        org=world.org, alias=world.alias, snapshot=world.old, hour=now - dt.timedelta(hours=2), requests=40
    )
    f.record_usage(
        org=world.org, alias=world.alias, snapshot=world.old, hour=now - dt.timedelta(days=12), requests=100
    )
    f.record_usage(
        org=world.org, alias=world.alias, snapshot=world.current, hour=now - dt.timedelta(hours=3), requests=7
    )
    f.record_usage(
        org=world.other_org,
        alias=world.alias,
        snapshot=world.old,
        hour=now - dt.timedelta(days=1),
        requests=5,
    )
    return migration


def test_usage_deprecated_lists_calls_last_seen_retirement_and_the_open_migration(world):
    migration = _deprecated_world(world)
    (use,) = selectors.usage_deprecated(org=world.org)
    assert use.snapshot == world.old and use.status == "deprecated"
    assert (use.calls_7d, use.calls_30d) == (40, 140)
    assert use.days_to_retirement in (19, 20) and use.migration == migration
    assert use.aliases == ["v1-chat"]
    assert use.last_seen > timezone.now() - dt.timedelta(hours=3)


def test_usage_page_shows_the_snapshot_the_way_out_and_a_chart(client, world):
    migration = _deprecated_world(world)
    client.force_login(world.member)
    response = client.get("/o/acme/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-snapshot="chat-2025-01-01"' in html
    assert f"/o/acme/migrations/{migration.pk}/" in html
    assert "/o/acme/diff/chat-2025-01-01...chat-2025-06-01/" in html
    assert "<svg" in html and "<polyline" in html and "v1-chat → chat-2025-06-01" in html
    client.force_login(world.outsider)
    assert client.get("/o/acme/usage/").status_code == 404


def test_usage_api_reports_this_organisation_only(api, world):
    _deprecated_world(world)
    body = api.get("/api/v1/usage/", key=world.key).json()
    assert [d["snapshot"] for d in body["deprecated"]] == ["chat-2025-01-01"]
    assert (
        body["deprecated"][0]["calls_30d"] == 140
        and body["deprecated"][0]["migration_to"] == "chat-2025-06-01"
    )
    assert len(body["days"]) == 30 and sum(sum(s["daily"]) for s in body["series"]) == 147
    other = api.get("/api/v1/usage/", key=world.other_key).json()
    assert other["deprecated"][0]["calls_30d"] == 5


def test_dashboard_shows_last_use_per_pin(client, world):
    _deprecated_world(world)
    client.force_login(world.member)
    html = client.get("/o/acme/").content.decode()
    assert "Last used" in html and "Not seen" not in html.split('data-alias="v1-chat"')[1].split("</tr>")[0]


def test_staff_see_who_still_calls_a_snapshot_with_csv(client, world):
    _deprecated_world(world)
    staff = f.UserFactory(username="vendor", is_staff=True)
    client.force_login(staff)
    listing = client.get("/staff/usage/").content.decode()
    assert 'data-snapshot="chat-2025-01-01"' in listing
    page = client.get("/staff/usage/chat-2025-01-01/").content.decode()
    assert 'data-org="acme"' in page and 'data-org="globex"' in page
    response = client.get("/staff/usage/chat-2025-01-01/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["organization"], r["calls_30d"]) for r in rows] == [("acme", "140"), ("globex", "5")]
    client.force_login(world.admin)
    assert client.get("/staff/usage/").status_code == 404
