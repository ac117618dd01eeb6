"""Changelog and feeds (issue #13, item 8): deprecations, retirements and extended support appear in
the changelog and the Atom feed; a personal, revocable feed token lets a feed reader or a calendar
subscribe without a session; the calendar link goes only to the organisation's own members."""

from __future__ import annotations

import pytest
from django.core import mail
from icalendar import Calendar

from contracts.billing import services as billing
from contracts.models import Membership, Snapshot
from notifications import services, tasks
from notifications.models import Contact, FeedToken, Notice
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def deprecated(world):
    Snapshot.objects.filter(pk=world.old.pk).update(
        deprecated_at=f.days(-10),
        retires_at=f.days(100),
        replacement=world.current,
        extended_support_offered=True,
        extended_support_until=f.days(200),
    )
    world.old.refresh_from_db()
    return world


def test_the_changelog_and_feed_announce_deprecations_and_extended_support(deprecated, client):
    billing.extended_support_grant(org=deprecated.org, snapshot=deprecated.old)
    client.force_login(deprecated.admin)
    page = client.get("/o/acme/changelog/").content.decode()
    assert f"Deprecated: {deprecated.old.name}" in page
    assert f"Extended support: {deprecated.old.name}" in page
    feed = client.get("/o/acme/changelog/feed.atom").content.decode()
    assert f"<title>Deprecated: {deprecated.old.name}</title>" in feed
    assert f"<title>Extended support: {deprecated.old.name}</title>" in feed
    # Another organisation's grant is not announced to it.
    client.force_login(deprecated.outsider)
    assert "Extended support:" not in client.get("/o/globex/changelog/feed.atom").content.decode()


def test_a_personal_feed_token_serves_the_feed_and_calendar_without_a_session_until_revoked(
    deprecated, client
):
    client.force_login(deprecated.member)
    assert client.post("/o/acme/feed-token/").status_code == 302
    token = FeedToken.objects.get(user=deprecated.member, revoked_at__isnull=True).token
    assert token in client.get("/o/acme/changelog/").content.decode()
    client.logout()
    feed = client.get(f"/o/acme/changelog/feed.atom?token={token}")
    assert feed.status_code == 200 and feed["Content-Type"].startswith("application/atom+xml")
    assert f"Deprecated: {deprecated.old.name}" in feed.content.decode()
    calendar = client.get(f"/api/v1/calendar.ics?token={token}")
    assert calendar.status_code == 200
    assert any("retires" in str(e["SUMMARY"]) for e in Calendar.from_ical(calendar.content).walk("VEVENT"))
    # Not for another organisation's feed, and not without the token.
    assert client.get(f"/o/globex/changelog/feed.atom?token={token}").status_code == 404
    assert client.get("/o/acme/changelog/feed.atom").status_code == 302
    # Revoked, or its user gone from the organisation: the link stops working.
    client.force_login(deprecated.member)
    client.post("/o/acme/feed-token/revoke/")
    client.logout()
    assert client.get(f"/o/acme/changelog/feed.atom?token={token}").status_code == 404
    assert client.get(f"/api/v1/calendar.ics?token={token}").status_code == 404
    fresh = services.feed_token_issue(org=deprecated.org, acting_user=deprecated.legal)
    Membership.objects.filter(user=deprecated.legal).delete()
    assert client.get(f"/o/acme/changelog/feed.atom?token={fresh.token}").status_code == 404


def test_only_the_organisation_members_get_the_calendar_link_in_mail(deprecated):
    services.calendar_token_regenerate(org=deprecated.org)
    Contact.objects.create(organization=deprecated.org, email="auditor@outside.example")
    services.notices_plan()
    notice = Notice.objects.filter(organization=deprecated.org, channel="email").first()
    tasks.send_notice.apply(args=[notice.pk]).get()
    by_recipient = {m.to[0]: m.body for m in mail.outbox}
    assert "calendar.ics?token=" in by_recipient[deprecated.admin.email]
    assert "calendar.ics?token=" not in by_recipient["auditor@outside.example"]
    assert "/o/acme/notifications/" in by_recipient["auditor@outside.example"]
