"""The dashboard: every pin with its status, retirement countdown, policy and open migrations;
filters and search that work as plain GET and as htmx partials; a query count independent of size."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts import models
from contracts.catalog import services
from contracts.models import Pin
from portal.views.dashboard import PAGE_SIZE
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich(world):
    """World plus an `embed` family whose pinned snapshot is deprecated and retires in 40 days."""
    embed = f.FamilyFactory(slug="embed", name="Embeddings")
    old = f.SnapshotFactory(
        family=embed,
        name="embed-2024-01-01",
        released_at=f.days(-300),
        deprecated_at=f.days(-10),
        retires_at=f.days(40),
        retention_until=f.days(400),
    )
    new = f.SnapshotFactory(family=embed, name="embed-2025-01-01", released_at=f.days(-20))
    old.replacement = new
    old.save(update_fields=["replacement"])
    alias = f.make_alias(name="v1-embed", target=old, at=f.days(-290))
    pin = f.make_pin(
        org=world.org, alias=alias, snapshot=old, policy=models.UpgradePolicy.FOLLOW, at=f.days(-280)
    )
    models.Migration.objects.create(organization=world.org, pin=pin, from_snapshot=old, to_snapshot=new)
    return world


def get(client, url, **headers):
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_dashboard_lists_every_pin_with_status_text_countdown_policy_and_open_migrations(rich, client):
    client.force_login(rich.admin)
    html = get(client, "/o/acme/")
    assert "v1-chat" in html and "v1-embed" in html
    assert "chat-2025-01-01" in html and "embed-2024-01-01" in html
    assert "Deprecated</span>" in html  # the status is a word, not only a colour
    assert "39 days" in html or "40 days" in html
    assert "Follow the alias default" in html and "Manual (moves only with consent)" in html
    assert "1 open" in html
    assert "Replacement:" in html and "embed-2025-01-01" in html
    assert 'aria-current="page">Pins' in html


def test_dashboard_filters_by_status_family_policy_and_search_as_plain_get(rich, client):
    client.force_login(rich.admin)
    deprecated = get(client, "/o/acme/?status=deprecated")
    assert "v1-embed" in deprecated and 'data-alias="v1-chat"' not in deprecated
    chat = get(client, "/o/acme/?family=chat")
    assert 'data-alias="v1-chat"' in chat and 'data-alias="v1-embed"' not in chat
    follow = get(client, "/o/acme/?policy=follow")
    assert 'data-alias="v1-embed"' in follow and 'data-alias="v1-chat"' not in follow
    searched = get(client, "/o/acme/?q=EMBED")
    assert 'data-alias="v1-embed"' in searched and 'data-alias="v1-chat"' not in searched
    assert "Showing <strong>1</strong> of 2 pins" in searched
    nothing = get(client, "/o/acme/?q=zzz")
    assert "No pins match these filters" in nothing


def test_unknown_filter_values_are_ignored_not_errors(rich, client):
    client.force_login(rich.admin)
    html = get(client, "/o/acme/?status=bogus&policy=%3Cscript%3E&q=" + "x" * 500)
    assert "<script>" not in html


def test_htmx_filter_request_returns_only_the_pins_fragment(rich, client):
    client.force_login(rich.admin)
    html = get(client, "/o/acme/?family=embed", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pins")
    assert html.lstrip().startswith('<section id="pins"')
    assert "<html" not in html and "orgnav" not in html
    assert 'data-alias="v1-embed"' in html and 'data-alias="v1-chat"' not in html


def test_htmx_history_restore_gets_the_full_page(rich, client):
    client.force_login(rich.admin)
    html = get(client, "/o/acme/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in html


def test_filter_form_works_without_javascript_and_with_htmx(rich, client):
    client.force_login(rich.admin)
    html = get(client, "/o/acme/")
    assert 'method="get" action="/o/acme/"' in html
    assert 'hx-get="/o/acme/"' in html and 'hx-target="#pins"' in html


def test_only_admins_are_offered_the_policy_change_link(rich, client):
    client.force_login(rich.member)
    assert "settings/#pin-" not in get(client, "/o/acme/")
    client.force_login(rich.admin)
    assert "settings/#pin-" in get(client, "/o/acme/")


def test_foreign_organisation_dashboard_is_404_and_anonymous_is_sent_to_login(rich, client):
    client.force_login(rich.outsider)
    assert client.get("/o/acme/").status_code == 404
    assert client.get("/o/no-such-org/").status_code == 404
    client.logout()
    response = client.get("/o/acme/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def make_pins(org: models.Organization, count: int, *, prefix: str) -> None:
    """Many pins at once (bulk: the services are exercised elsewhere; this is about reading)."""
    family = f.FamilyFactory(slug=f"{prefix}-fam", name=f"{prefix} family")
    snapshots = [
        f.SnapshotFactory(
            family=family,
            name=f"{prefix}-snap-{i}",
            released_at=f.days(-100 + i),
            deprecated_at=f.days(-5) if i == 1 else None,
            retires_at=f.days(60) if i == 1 else None,
        )
        for i in range(3)
    ]
    now = timezone.now()
    aliases = models.Alias.objects.bulk_create(
        models.Alias(name=f"{prefix}-alias-{i}", family=family, target=snapshots[i % 3], created_at=now)
        for i in range(count)
    )
    pins = models.Pin.objects.bulk_create(
        models.Pin(
            organization=org,
            alias=alias,
            snapshot=snapshots[i % 3],
            policy=models.UpgradePolicy.values[i % 3],
        )
        for i, alias in enumerate(aliases)
    )
    models.Migration.objects.bulk_create(
        models.Migration(
            organization=org,
            pin=pin,
            from_snapshot=pin.snapshot,
            to_snapshot=snapshots[(i + 1) % 3],
            deadline=now + dt.timedelta(days=30),
        )
        for i, pin in enumerate(pins[::7])
    )


def count_queries(client, url: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_dashboard_with_5000_pins_shows_a_page_with_exact_counts_in_as_many_queries_as_with_5(client):
    small = f.OrganizationFactory(slug="small")
    large = f.OrganizationFactory(slug="large")
    user = f.UserFactory(username="both")
    f.MembershipFactory(user=user, organization=small)
    f.MembershipFactory(user=user, organization=large)
    make_pins(small, 5, prefix="s")
    make_pins(large, 5000, prefix="l")
    client.force_login(user)
    client.get("/o/small/")  # warm the session and the content types
    small_count, small_html = count_queries(client, "/o/small/")
    large_count, large_html = count_queries(client, "/o/large/")
    assert small_html.count('class="pin-row') == 5
    assert large_html.count('class="pin-row') == PAGE_SIZE
    assert "5000 pins" in large_html and "Page 1 of 200" in large_html
    # One snapshot in three is deprecated and retires within 90 days: exact over all 5,000 pins.
    deprecated = Pin.objects.filter(organization=large, snapshot__deprecated_at__isnull=False).count()
    assert re.search(rf'stat-value">{deprecated}</span><span class="stat-label">on a deprecated', large_html)
    assert large_count == small_count, (small_count, large_count)
    last_count, last_html = count_queries(client, "/o/large/?page=200")
    assert last_count == small_count and last_html.count('class="pin-row') == PAGE_SIZE
    filtered_count, filtered_html = count_queries(client, "/o/large/?status=deprecated&q=alias")
    assert filtered_count == small_count
    assert f"Showing <strong>{deprecated}</strong> of 5000 pins" in filtered_html
    assert filtered_html.count("badge-deprecated") == PAGE_SIZE


def test_pin_status_follows_the_clock(world, client):
    services.snapshot_update(snapshot=world.old, data={"deprecated_at": f.days(-1), "retires_at": f.days(3)})
    client.force_login(world.admin)
    html = get(client, "/o/acme/")
    assert "Deprecated</span>" in html and "left" in html
