"""Lists that scale with their data: cursor pages with a `Link: rel="next"`, stable while rows are
inserted, one page-size bound everywhere, 400 for a malformed or foreign cursor; ETag and 304."""

from __future__ import annotations

import re

import pytest

from contracts.models import Alias, Pin, SnapshotStatus, UpgradePolicy
from contracts.pagination import MAX_PAGE_SIZE
from notifications.models import Channel, Milestone, Notice
from tests import factories as f
from tests.portal.test_dashboard import make_pins

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/snapshots/",
    "/api/v1/pins/",
    "/api/v1/migrations/",
    "/api/v1/consents/",
    "/api/v1/notices/",
    "/api/v1/webhooks/",
    "/api/v1/bug-reports/",
    "/api/v1/snapshots/chat-2025-01-01/changelog/",
    "/api/v1/aliases/v1-chat/history/",
]


def next_url(response) -> str | None:
    match = re.match(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def walk(api, url, key) -> list:
    rows, pages = [], 0
    while url:
        response = api.get(url, key=key)
        assert response.status_code == 200, response.content
        rows += response.json()
        url, pages = next_url(response), pages + 1
    return rows, pages


def test_pins_come_in_pages_linked_by_next_and_a_page_inserted_meanwhile_shifts_nothing(world, api):
    make_pins(world.org, 25, prefix="pg")
    first = api.get("/api/v1/pins/?limit=10", key=world.key)
    assert first.status_code == 200 and len(first.json()) == 10
    seen = [p["alias"] for p in first.json()]
    # Rows inserted before and inside the part already read, while the client pages.
    family = Alias.objects.get(name="pg-alias-0").family
    for name in ("aaa-first", seen[3] + "-b"):
        alias = Alias.objects.create(name=name, family=family, target=world.old)
        Pin.objects.create(organization=world.org, alias=alias, snapshot=world.old)
    rest, pages = walk(api, next_url(first), world.key)
    names = seen + [p["alias"] for p in rest]
    assert len(names) == len(set(names)) == 26  # none repeated, none skipped (world's pin + 25)
    assert names == sorted(names) and pages == 2
    assert next_url(api.get(f"/api/v1/pins/?limit={MAX_PAGE_SIZE}", key=world.key)) is None


@pytest.mark.parametrize("url", LISTS)
def test_every_list_refuses_a_page_size_over_the_bound_and_a_malformed_cursor(world, api, url):
    too_big = api.get(f"{url}?limit={MAX_PAGE_SIZE + 1}", key=world.key)
    assert too_big.status_code == 400 and "limit" in too_big.json()["error"]["fields"]
    for bad in ("nonsense", "eyJrIjpbMV19:1abc:zzz"):
        response = api.get(f"{url}?cursor={bad}", key=world.key)
        assert response.status_code == 400, (url, response.content)
        assert "cursor" in response.json()["error"]["fields"]


def test_a_cursor_of_another_list_organisation_or_filter_is_refused(world, api):
    make_pins(world.org, 5, prefix="fc")
    make_pins(world.other_org, 5, prefix="fo")
    cursor = next_url(api.get("/api/v1/pins/?limit=2", key=world.key)).split("cursor=")[1]
    assert api.get(f"/api/v1/pins/?limit=2&cursor={cursor}", key=world.key).status_code == 200
    for url, key in (
        (f"/api/v1/pins/?cursor={cursor}", world.other_key),  # another organisation
        (f"/api/v1/pins/?policy=manual&cursor={cursor}", world.key),  # another filter
        (f"/api/v1/migrations/?cursor={cursor}", world.key),  # another endpoint
    ):
        response = api.get(url, key=key)
        assert response.status_code == 400 and response.json()["error"]["fields"] == {
            "cursor": "belongs to another list"
        }


def test_pins_offer_the_dashboards_filters(world, api):
    make_pins(world.org, 6, prefix="flt")  # snapshot 1 of 3 is deprecated: aliases 1 and 4
    deprecated = api.get("/api/v1/pins/?status=deprecated", key=world.key).json()
    assert sorted(p["alias"] for p in deprecated) == ["flt-alias-1", "flt-alias-4"]
    assert {p["status"] for p in deprecated} == {SnapshotStatus.DEPRECATED}
    assert [p["alias"] for p in api.get("/api/v1/pins/?q=v1-ch", key=world.key).json()] == ["v1-chat"]
    assert len(api.get("/api/v1/pins/?family=flt-fam", key=world.key).json()) == 6
    Pin.objects.filter(alias__name="flt-alias-2").update(policy=UpgradePolicy.FOLLOW)
    expected = Pin.objects.filter(organization=world.org, policy=UpgradePolicy.FOLLOW)
    follow = api.get("/api/v1/pins/?policy=follow", key=world.key).json()
    assert [p["alias"] for p in follow] == sorted(expected.values_list("alias__name", flat=True))
    assert "flt-alias-2" in [p["alias"] for p in follow] and len(follow) < 7
    assert api.get("/api/v1/pins/?status=nope", key=world.key).status_code == 400


def test_notices_and_consents_page_with_next(world, api):
    for i in range(7):
        Notice.objects.create(
            organization=world.org,
            milestone=Milestone.ADHOC,
            channel=Channel.EMAIL,
            dedupe_key=f"n{i}",
            due_at=f.days(-i),
        )
    rows, pages = walk(api, "/api/v1/notices/?limit=3", world.key)
    assert len(rows) == 7 and pages == 3 and len({r["id"] for r in rows}) == 7
    body = api.get("/api/v1/consents/?limit=1", key=world.key).json()
    assert set(body) == {"count", "next", "results"}


CONDITIONAL_URLS = ["/api/v1/resolve/v1-chat/", "/api/v1/snapshots/", "/api/v1/snapshots/chat-2025-01-01/"]
CONDITIONAL_URLS += ["/api/v1/pins/", "/api/v1/migrations/", "/api/v1/bug-reports/"]


@pytest.mark.parametrize("url", CONDITIONAL_URLS)
def test_conditional_get_answers_304_for_the_current_etag_and_the_full_resource_otherwise(world, api, url):
    first = api.get(url, key=world.key)
    etag = first.headers["ETag"]
    again = api.get(url, key=world.key, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    stale = api.get(url, key=world.key, HTTP_IF_NONE_MATCH='"something-else"')
    assert stale.status_code == 200 and stale.content == first.content


def test_a_pin_change_changes_the_pins_etag(world, api):
    etag = api.get("/api/v1/pins/", key=world.key).headers["ETag"]
    Pin.objects.filter(pk=world.pin.pk).update(policy=UpgradePolicy.FOLLOW)
    changed = api.get("/api/v1/pins/", key=world.key, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_the_calendar_feed_answers_304(world, client):
    from notifications import services

    token = services.calendar_token_regenerate(org=world.org).token
    first = client.get(f"/api/v1/calendar.ics?token={token}")
    assert first.status_code == 200
    again = client.get(f"/api/v1/calendar.ics?token={token}", HTTP_IF_NONE_MATCH=first.headers["ETag"])
    assert again.status_code == 304
