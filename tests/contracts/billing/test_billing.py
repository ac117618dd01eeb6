"""Extended-support grants, cancellation, tiers, the billing page and the Checkout endpoint."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts.billing import services as billing
from contracts.errors import ApplicationError
from contracts.models import (
    ConsentRecord,
    ContractTerms,
    ExtendedSupport,
    LedgerAction,
    Migration,
    Organization,
    StripeEvent,
)
from contracts.pins import selectors
from contracts.templatetags.instants import instant
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def migration(offer):
    return Migration.objects.create(
        organization=offer.org,
        pin=offer.pin,
        from_snapshot=offer.old,
        to_snapshot=offer.current,
        deadline=offer.old.retires_at,
    )


def records(org, action):
    return ConsentRecord.objects.filter(organization=org, action=action)


# ---- grant service ---------------------------------------------------------------------------


def test_grant_writes_a_ledger_record_and_moves_the_open_migration_deadline(offer, migration):
    grant = billing.extended_support_grant(
        org=offer.org, snapshot=offer.old, checkout_session_id="cs_1", acting_user=offer.admin
    )
    assert grant.until == offer.old.extended_support_until
    [record] = records(offer.org, LedgerAction.EXTENDED_SUPPORT)
    assert record.from_snapshot == offer.old.name
    assert record.details["grant_id"] == grant.pk
    migration.refresh_from_db()
    assert migration.deadline == grant.until


def test_grant_is_idempotent_per_checkout_session(offer):
    first = billing.extended_support_grant(org=offer.org, snapshot=offer.old, checkout_session_id="cs_1")
    again = billing.extended_support_grant(org=offer.org, snapshot=offer.old, checkout_session_id="cs_1")
    assert first.pk == again.pk
    assert records(offer.org, LedgerAction.EXTENDED_SUPPORT).count() == 1


def test_grant_past_the_snapshots_extended_support_end_is_refused_and_writes_nothing(offer, migration):
    with pytest.raises(ApplicationError) as exc:
        billing.extended_support_grant(
            org=offer.org,
            snapshot=offer.old,
            until=offer.old.extended_support_until + dt.timedelta(days=1),
        )
    assert exc.value.status_code == 400
    assert "until" in exc.value.fields
    assert ExtendedSupport.objects.count() == 0
    assert records(offer.org, LedgerAction.EXTENDED_SUPPORT).count() == 0
    migration.refresh_from_db()
    assert migration.deadline == offer.old.retires_at


def test_grant_after_the_offer_ended_is_refused(offer):
    with pytest.raises(ApplicationError):
        billing.extended_support_grant(org=offer.org, snapshot=offer.old, at=f.days(151))
    assert ExtendedSupport.objects.count() == 0


def test_grant_on_a_snapshot_without_an_offer_is_refused(world):
    with pytest.raises(ApplicationError) as exc:
        billing.extended_support_grant(org=world.org, snapshot=world.old, until=f.days(10))
    assert exc.value.status_code == 409
    assert ExtendedSupport.objects.count() == 0


def test_cancel_ends_at_the_period_end_with_a_ledger_record_and_a_notice(
    offer, migration, mailoutbox, django_capture_on_commit_callbacks
):
    grant = billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    period_end = f.days(60)
    with django_capture_on_commit_callbacks(execute=True):
        billing.extended_support_cancel(grant=grant, ends_at=period_end, reason="subscription ended")
    grant.refresh_from_db()
    assert grant.until == period_end and grant.cancelled_at is not None
    [end] = records(offer.org, LedgerAction.EXTENDED_SUPPORT_END)
    assert end.details["until"] == period_end.isoformat()
    migration.refresh_from_db()
    assert migration.deadline == period_end
    [notice] = [m for m in mailoutbox if offer.admin.email in m.to]
    assert {m.subject for m in mailoutbox} == {notice.subject}, "one notice, one subject, to each recipient"
    assert offer.old.name in notice.subject and period_end.strftime("%Y-%m-%d") in notice.subject


def test_cancel_before_retirement_puts_the_deadline_back_to_retirement(offer, migration):
    grant = billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    billing.extended_support_cancel(grant=grant, ends_at=f.days(5), reason="refund")
    migration.refresh_from_db()
    assert migration.deadline == offer.old.retires_at


# ---- resolve respects grants -----------------------------------------------------------------


def test_resolve_carries_the_grant_end_and_is_refreshed_when_a_grant_is_made(offer, api):
    url = "/api/v1/resolve/v1-chat/"
    assert api.get(url, key=offer.key).json()["extended_support_until"] is None
    grant = billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    payload = api.get(url, key=offer.key).json()
    assert payload["snapshot"]["id"] == offer.old.name
    assert dt.datetime.fromisoformat(payload["extended_support_until"].replace("Z", "+00:00")) == grant.until
    assert api.get(url, key=offer.other_key).json()["extended_support_until"] is None


def test_warm_resolve_with_a_grant_makes_zero_queries(offer, api):
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    url = "/api/v1/resolve/v1-chat/"
    assert api.get(url, key=offer.key).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url, key=offer.key)
    assert response.json()["extended_support_until"] is not None
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_resolve_in_the_past_shows_no_grant_before_it_was_bought(offer):
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    assert selectors.resolve(org=offer.org, alias="v1-chat", at=f.days(-1)).extended_support_until is None
    assert selectors.resolve(org=offer.org, alias="v1-chat", at=f.days(40)).extended_support_until is not None


# ---- tiers -----------------------------------------------------------------------------------


def test_tier_change_proposes_the_tiers_newest_terms_unless_already_accepted(world):
    body = "Enterprise terms."
    terms = ContractTerms.objects.create(
        version="ent-1",
        title="Enterprise",
        tier="enterprise",
        body=body,
        body_sha256=ContractTerms.hash_body(body),
        effective_at=f.days(-5),
        retired_bug_policy="Kept 1 year.",
    )
    org = billing.organization_tier_set(org=world.org, tier="enterprise", subscription_id="sub_1")
    assert (org.tier, org.offered_terms, org.stripe_subscription_id) == ("enterprise", terms, "sub_1")
    Organization.objects.filter(pk=world.org.pk).update(accepted_terms=terms, offered_terms=None)
    org = billing.organization_tier_set(org=world.org, tier="enterprise", subscription_id="sub_1")
    assert org.offered_terms is None


# ---- Checkout endpoint -----------------------------------------------------------------------

CHECKOUT = "/api/v1/extended-support/checkout/"


def test_admin_key_starts_a_checkout_and_gets_its_url(offer, api, stripe_api):
    response = api.post(CHECKOUT, {"snapshot": offer.old.name}, key=offer.key)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["checkout_url"] == stripe_api.checkout_sessions[body["session_id"]]["url"]
    assert ExtendedSupport.objects.count() == 0, "the grant waits for the paid webhook"


def test_member_trying_to_buy_is_forbidden(offer, client, stripe_api):
    client.force_login(offer.member)
    response = client.post(CHECKOUT, {"snapshot": offer.old.name}, content_type="application/json")
    assert response.status_code == 403
    page = client.post(f"/o/{offer.org.slug}/billing/checkout/", {"snapshot": offer.old.name})
    assert page.status_code == 403
    assert stripe_api.requests == []


@pytest.mark.parametrize(
    ("snapshot", "status"),
    [("chat-2025-06-01", 409), ("no-such-snapshot", 404), ("", 400), ("bad name!", 400)],
)
def test_checkout_refusals(offer, api, stripe_api, snapshot, status):
    response = api.post(CHECKOUT, {"snapshot": snapshot}, key=offer.key)
    assert response.status_code == status
    assert "error" in response.json()
    assert stripe_api.requests == []


def test_checkout_refused_when_the_pin_is_not_on_a_deprecated_snapshot(world, api, stripe_api):
    world.old.extended_support_offered = True
    world.old.extended_support_until = f.days(100)
    world.old.extended_support_price_id = "price_es_test"
    world.old.save()
    response = api.post(CHECKOUT, {"snapshot": world.old.name}, key=world.key)
    assert response.status_code == 409
    assert "not deprecated" in response.json()["error"]["message"]


def test_checkout_refused_when_already_covered(offer, api, stripe_api):
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    response = api.post(CHECKOUT, {"snapshot": offer.old.name}, key=offer.key)
    assert response.status_code == 409
    assert "Already covered" in response.json()["error"]["message"]


def test_checkout_without_billing_configured_is_a_conflict(offer, api, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = api.post(CHECKOUT, {"snapshot": offer.old.name}, key=offer.key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "billing_not_configured"


# ---- billing page ----------------------------------------------------------------------------


def test_page_without_stripe_says_not_configured_and_offers_a_simulation_in_debug(offer, client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True
    client.force_login(offer.admin)
    html = client.get(f"/o/{offer.org.slug}/billing/").content.decode()
    assert "Billing is not configured" in html
    assert "Simulate purchase" in html
    response = client.post(
        f"/o/{offer.org.slug}/billing/simulate/", {"snapshot": offer.old.name, "confirm": "yes"}
    )
    assert response.status_code == 302
    grant = ExtendedSupport.objects.get()
    assert grant.snapshot == offer.old and grant.stripe_checkout_session_id == ""
    assert records(offer.org, LedgerAction.EXTENDED_SUPPORT).get().details["simulated"] is True
    html = client.get(f"/o/{offer.org.slug}/billing/").content.decode()
    assert grant.until.strftime("%Y-%m-%d") in html
    assert "Already covered" in html


def test_simulation_is_refused_outside_debug(offer, client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = False
    client.force_login(offer.admin)
    assert "Simulate purchase" not in client.get(f"/o/{offer.org.slug}/billing/").content.decode()
    assert (
        client.post(
            f"/o/{offer.org.slug}/billing/simulate/", {"snapshot": offer.old.name, "confirm": "yes"}
        ).status_code
        == 409
    )
    assert ExtendedSupport.objects.count() == 0


def test_page_shows_tier_grants_and_buy_button_only_to_admins(offer, client, stripe_api):
    Organization.objects.filter(pk=offer.org.pk).update(tier="enterprise")
    client.force_login(offer.admin)
    html = client.get(f"/o/{offer.org.slug}/billing/").content.decode()
    assert "enterprise" in html
    assert f"/billing/extended-support/{offer.old.name}/" in html and "Invoices and payment methods" in html
    assert "billing.stripe.com" in client.get(f"/o/{offer.org.slug}/billing/")["Content-Security-Policy"]
    client.force_login(offer.member)
    html = client.get(f"/o/{offer.org.slug}/billing/").content.decode()
    assert "/billing/extended-support/" not in html and "An admin can buy it." in html


def test_page_buy_and_portal_redirect_to_stripe(offer, client, stripe_api):
    client.force_login(offer.admin)
    response = client.post(
        f"/o/{offer.org.slug}/billing/checkout/", {"snapshot": offer.old.name, "confirm": "yes"}
    )
    assert response.status_code == 303
    assert response["Location"].startswith(stripe_api.url + "/pay/cs_test_")
    response = client.post(f"/o/{offer.org.slug}/billing/portal/")
    assert response.status_code == 303
    assert response["Location"].startswith(stripe_api.url + "/portal/")


def test_another_organisation_gets_404_on_every_billing_page(offer, client, stripe_api):
    client.force_login(offer.outsider)
    for url in ("billing/", "billing/checkout/", "billing/portal/", "billing/simulate/"):
        method = client.get if url == "billing/" else client.post
        assert method(f"/o/{offer.org.slug}/{url}").status_code == 404
    assert stripe_api.requests == []


# ---- demo data and the staff console ---------------------------------------------------------


def test_demo_seeder_offers_extended_support_and_gives_globex_one_grant_idempotently(db):
    from portal.demo import SEEDERS

    for _ in range(2):
        for seeder in SEEDERS:
            seeder()
    assert (
        ExtendedSupport.objects.filter(organization__slug="globex", snapshot__name="chat-2024-11-15").count()
        == 1
    )
    from contracts.models import Snapshot

    offered = Snapshot.objects.get(name="chat-2025-06-01")
    assert offered.extended_support_offered and offered.extended_support_price_id
    assert offered.extended_support_until == offered.retires_at + dt.timedelta(days=120)


def test_staff_see_grants_and_stripe_events_read_only_in_the_admin(offer, client):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser("staff-billing", "s@vendor.example", "pw")
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    StripeEvent.objects.create(
        event_id="evt_admin", type="invoice.paid", payload={}, processed_at=timezone.now()
    )
    client.force_login(staff)
    assert client.get("/admin/contracts/extendedsupport/").status_code == 200
    event = StripeEvent.objects.get()
    assert client.get(f"/admin/contracts/stripeevent/{event.pk}/change/").status_code == 200
    assert client.get("/admin/contracts/stripeevent/add/").status_code == 403
    snapshot_form = client.get(f"/admin/contracts/snapshot/{offer.old.pk}/change/").content.decode()
    assert "extended_support_price_id" in snapshot_form


def test_snapshot_and_migration_pages_lead_an_admin_to_the_extended_support_purchase(world, client):
    from contracts.models import Migration

    world.old.deprecated_at = f.days(-1)
    world.old.retires_at = f.days(60)
    world.old.extended_support_offered = True
    world.old.extended_support_until = f.days(200)
    world.old.extended_support_price_id = "price_demo_extended_support_chat_2025_06_01"
    world.old.save(
        update_fields=[
            "deprecated_at",
            "retires_at",
            "extended_support_offered",
            "extended_support_until",
            "extended_support_price_id",
        ]
    )
    migration = Migration.objects.create(
        organization=world.org,
        pin=world.pin,
        from_snapshot=world.old,
        to_snapshot=world.current,
        deadline=world.old.retires_at,
    )
    client.force_login(world.admin)
    for url in (f"/o/acme/snapshots/{world.old.name}/", f"/o/acme/migrations/{migration.pk}/"):
        page = client.get(url).content.decode()
        assert "Extended support is offered" in page and "EUR 400.00 per month (demo price)" in page
        assert f"/o/acme/billing/extended-support/{world.old.name}/" in page
    client.force_login(world.member)
    page = client.get(f"/o/acme/snapshots/{world.old.name}/").content.decode()
    assert "Extended support is offered" in page and "/o/acme/billing/extended-support/" not in page
    # Once bought, it is not offered again, and the pages give the new date.
    billing.extended_support_grant(org=world.org, snapshot=world.old)
    client.force_login(world.admin)
    for url in (f"/o/acme/snapshots/{world.old.name}/", f"/o/acme/migrations/{migration.pk}/"):
        page = client.get(url).content.decode()
        assert "Extended support is offered" not in page
        assert instant(world.old.extended_support_until) in page
