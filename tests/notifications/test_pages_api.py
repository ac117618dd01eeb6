"""The notifications page, the API and the calendar feed; tenancy (404 for other organisations)."""

from __future__ import annotations

import pytest
from icalendar import Calendar

from contracts.models import ExtendedSupport, Migration, MigrationState
from notifications import services
from notifications.models import CalendarToken, Contact, Notice, WebhookDelivery, WebhookEndpoint
from tests import factories as f
from tests.notifications.conftest import accept_terms, deprecate

pytestmark = pytest.mark.django_db


@pytest.fixture
def notices(world):
    accept_terms(world.org, min_notice_days=90)
    deprecate(world.old, deprecated_at=f.days(-1), retires_at=f.days(120), replacement=world.current)
    deprecate(world.current, deprecated_at=f.days(-2), retires_at=f.days(150))
    services.notices_plan()
    return Notice.objects.filter(organization=world.org)


# ---- API ----------------------------------------------------------------------------------


def test_notices_api_lists_only_this_organisations_notices_with_ack_fields(world, notices, api):
    response = api.get("/api/v1/notices/", key=world.key)
    assert response.status_code == 200
    rows = response.json()
    assert {r["milestone"] for r in rows} == {"deprecation-announced"}
    assert rows[0]["snapshot"] == "chat-2025-01-01"
    assert {"status", "channel", "sent_at", "acknowledged_at", "acknowledged_by"} <= rows[0].keys()
    other = api.get("/api/v1/notices/", key=world.other_key).json()
    assert [r["snapshot"] for r in other] == ["chat-2025-06-01"]


def test_notices_api_needs_a_key(api):
    assert api.get("/api/v1/notices/").status_code in (401, 403)


def test_webhook_api_shows_the_secret_once_and_refuses_private_urls(world, api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    refused = api.post(
        "/api/v1/webhooks/", {"url": "https://10.0.0.7/h", "events": ["snapshot.deprecated"]}, key=world.key
    )
    assert refused.status_code == 400 and "url" in refused.json()["error"]["fields"]
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    created = api.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/h", "events": ["snapshot.deprecated"]}, key=world.key
    )
    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    listed = api.get("/api/v1/webhooks/", key=world.key).json()
    assert [e["url"] for e in listed] == ["http://127.0.0.1:9/h"] and "secret" not in listed[0]
    assert api.get("/api/v1/webhooks/", key=world.other_key).json() == []
    bad_event = api.post(
        "/api/v1/webhooks/", {"url": "http://127.0.0.1:9/h", "events": ["nope"]}, key=world.key
    )
    assert bad_event.status_code == 400


def test_webhook_test_api_is_404_for_another_organisations_endpoint(
    world, api, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["snapshot.retired"]
    )
    assert api.post(f"/api/v1/webhooks/{endpoint.pk}/test/", key=world.other_key).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/webhooks/{endpoint.pk}/test/", key=world.key)
    assert response.status_code == 202
    assert WebhookDelivery.objects.get().status == "succeeded"
    assert len(webhook_receiver.requests) == 1


def test_a_member_session_cannot_register_webhooks(world, client):
    client.force_login(world.member)
    response = client.post(
        "/api/v1/webhooks/?org=acme",
        {"url": "https://hooks.example.com/x", "events": ["snapshot.retired"]},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()


# ---- calendar -----------------------------------------------------------------------------


def test_calendar_feed_parses_and_lists_retirements_notice_dates_deadlines_and_grant_ends(
    world, notices, client
):
    Migration.objects.create(
        organization=world.org,
        pin=world.pin,
        from_snapshot=world.old,
        to_snapshot=world.current,
        state=MigrationState.PROPOSED,
        proposed_at=f.days(-1),
        deadline=f.days(40),
    )
    ExtendedSupport.objects.create(organization=world.org, snapshot=world.old, until=f.days(300))
    token = services.calendar_token_regenerate(org=world.org)
    response = client.get(f"/api/v1/calendar.ics?token={token.token}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    summaries = sorted(str(e["SUMMARY"]) for e in calendar.walk("VEVENT"))
    assert "chat-2025-01-01 retires" in summaries
    assert "Notice date: chat-2025-01-01" in summaries
    assert any(s.startswith("Migration deadline: chat-2025-01-01") for s in summaries)
    assert "Extended support ends: chat-2025-01-01" in summaries
    assert all(str(e["UID"]) for e in calendar.walk("VEVENT"))


def test_a_revoked_or_missing_calendar_token_is_refused(world, client):
    token = services.calendar_token_regenerate(org=world.org)
    fresh = services.calendar_token_regenerate(org=world.org)
    assert client.get(f"/api/v1/calendar.ics?token={token.token}").status_code == 404
    assert client.get(f"/api/v1/calendar.ics?token={fresh.token}").status_code == 200
    services.calendar_token_revoke(org=world.org)
    assert client.get(f"/api/v1/calendar.ics?token={fresh.token}").status_code == 404
    assert client.get("/api/v1/calendar.ics").status_code == 400


# ---- portal page --------------------------------------------------------------------------


def test_notifications_page_shows_recipients_webhooks_calendar_and_the_notice_log(world, notices, client):
    services.contact_add(org=world.org, email="ops@acme.example")
    services.calendar_token_regenerate(org=world.org)
    client.force_login(world.admin)
    response = client.get("/o/acme/notifications/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "ops@acme.example",
        world.legal.email,
        "Webhook endpoints",
        "calendar.ics?token=",
        "Deprecation announced",
        "Delivery log",
    ):
        assert text in body


def test_notifications_page_is_404_for_another_organisation(world, client):
    client.force_login(world.outsider)
    assert client.get("/o/acme/notifications/").status_code == 404


def test_a_member_sees_the_log_but_cannot_change_settings(world, client):
    client.force_login(world.member)
    page = client.get("/o/acme/notifications/")
    assert page.status_code == 200 and "calendar.ics" not in page.content.decode()
    assert client.post("/o/acme/notifications/contacts/", {"email": "x@acme.example"}).status_code == 403
    assert not Contact.objects.exists()


def test_malformed_contact_address_answers_400_naming_the_field(world, client):
    client.force_login(world.admin)
    response = client.post("/o/acme/notifications/contacts/", {"email": "not-an-address"})
    assert response.status_code == 400
    assert "email" in response.content.decode()
    assert not Contact.objects.exists()


def test_admin_adds_and_removes_a_contact(world, client):
    client.force_login(world.admin)
    assert (
        client.post(
            "/o/acme/notifications/contacts/", {"email": "ops@acme.example", "name": "Ops"}
        ).status_code
        == 302
    )
    contact = Contact.objects.get()
    other_admin = world.outsider
    client.force_login(other_admin)
    assert client.post(f"/o/acme/notifications/contacts/{contact.pk}/remove/").status_code == 404
    client.force_login(world.admin)
    assert client.post(f"/o/acme/notifications/contacts/{contact.pk}/remove/").status_code == 302
    assert not Contact.objects.exists()


def test_admin_adds_a_webhook_sees_the_secret_once_rotates_and_sends_a_test(
    world, client, webhook_receiver, django_capture_on_commit_callbacks
):
    client.force_login(world.admin)
    response = client.post(
        "/o/acme/notifications/webhooks/", {"url": webhook_receiver.url, "events": ["snapshot.deprecated"]}
    )
    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()
    assert endpoint.secret not in client.get("/o/acme/notifications/").content.decode()
    rotated = client.post(f"/o/acme/notifications/webhooks/{endpoint.pk}/rotate/")
    endpoint.refresh_from_db()
    assert endpoint.secret in rotated.content.decode() and endpoint.previous_secret
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/o/acme/notifications/webhooks/{endpoint.pk}/test/").status_code == 302
    assert len(webhook_receiver.requests) == 1
    log = client.get("/o/acme/notifications/").content.decode()
    assert "webhook.test" in log and "Succeeded" in log


def test_admin_refused_webhook_url_answers_400_saying_why(world, client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(world.admin)
    response = client.post(
        "/o/acme/notifications/webhooks/", {"url": "https://192.168.1.1/x", "events": ["snapshot.retired"]}
    )
    assert response.status_code == 400
    assert "non-public" in response.content.decode()


def test_admin_regenerates_and_revokes_the_calendar_link(world, client):
    client.force_login(world.admin)
    client.post("/o/acme/notifications/calendar/regenerate/")
    token = CalendarToken.objects.get(revoked_at__isnull=True)
    assert token.token in client.get("/o/acme/notifications/").content.decode()
    client.post("/o/acme/notifications/calendar/revoke/")
    assert not CalendarToken.objects.filter(revoked_at__isnull=True).exists()
