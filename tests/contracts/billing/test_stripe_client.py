"""Outgoing Stripe calls: the real stripe client against the local stand-in (no network)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.billing import services as billing_services
from contracts.billing import stripe as billing_stripe
from contracts.errors import ApplicationError
from contracts.models import Organization
from tests import factories as f
from tests.contracts import stripe_standin as standin

pytestmark = pytest.mark.django_db


def checkout(world, *, at=None):
    return billing_services.extended_support_checkout_create(
        org=world.org,
        snapshot_name=world.old.name,
        acting_user=world.admin,
        success_url="http://testserver/o/acme/billing/?checkout=success",
        cancel_url="http://testserver/o/acme/billing/?checkout=cancelled",
        at=at,
    )


def test_client_comes_from_settings_and_talks_to_the_configured_base_address(stripe_api):
    client = billing_stripe.stripe_client()
    customer = client.v1.customers.create(params={"name": "Probe"}, options={"idempotency_key": "probe-1"})
    assert customer.id.startswith("cus_test_")
    [request] = stripe_api.requests
    assert request.headers["Authorization"] == f"Bearer {standin.SECRET_KEY}"
    assert request.headers["Idempotency-Key"] == "probe-1"


def test_without_a_secret_key_billing_is_not_configured(settings):
    settings.STRIPE_SECRET_KEY = ""
    assert billing_stripe.billing_configured() is False
    with pytest.raises(billing_stripe.BillingNotConfigured):
        billing_stripe.stripe_client()


def test_checkout_sends_price_customer_metadata_urls_and_deterministic_idempotency_keys(offer, stripe_api):
    at = timezone.now()
    redirect = checkout(offer, at=at)

    [customer] = stripe_api.posts("/v1/customers")
    assert customer.form["metadata[org]"] == "acme"
    assert customer.headers["Idempotency-Key"].startswith(f"vcp-customer-{offer.org.pk}-")
    [session] = stripe_api.posts("/v1/checkout/sessions")
    form = session.form
    assert form["mode"] == "subscription"
    assert form["line_items[0][price]"] == "price_es_test"
    assert form["line_items[0][quantity]"] == "1"
    assert form["customer"] == Organization.objects.get(pk=offer.org.pk).stripe_customer_id
    assert form["metadata[purpose]"] == "extended-support"
    assert form["metadata[snapshot]"] == offer.old.name
    assert form["metadata[org_id]"] == str(offer.org.pk)
    assert form["metadata[until]"] == offer.old.extended_support_until.isoformat()
    assert form["subscription_data[metadata][snapshot]"] == offer.old.name
    assert form["success_url"].endswith("?checkout=success")
    attempt = int(at.timestamp()) // billing_services.CHECKOUT_ATTEMPT_SECONDS
    key = session.headers["Idempotency-Key"]
    assert key.startswith(f"vcp-es-checkout-{offer.org.pk}-{offer.old.pk}-{attempt}-")
    assert key == redirect.idempotency_key
    assert redirect.url == stripe_api.checkout_sessions[redirect.session_id]["url"]


def test_a_repeated_checkout_in_the_same_attempt_reuses_the_key_and_gets_the_same_session(offer, stripe_api):
    at = timezone.now().replace(minute=1)
    first = checkout(offer, at=at)
    second = checkout(offer, at=at + dt.timedelta(minutes=30))
    assert first.idempotency_key == second.idempotency_key
    assert first.session_id == second.session_id
    assert len(stripe_api.posts("/v1/customers")) == 1, "the customer is created once per organisation"


def test_the_next_attempt_window_sends_a_new_key(offer, stripe_api):
    at = timezone.now()
    first = checkout(offer, at=at)
    later = checkout(offer, at=at + dt.timedelta(seconds=billing_services.CHECKOUT_ATTEMPT_SECONDS))
    assert first.idempotency_key != later.idempotency_key
    assert first.session_id != later.session_id


def test_changed_parameters_never_reuse_an_idempotency_key(offer, stripe_api):
    at = timezone.now()
    first = checkout(offer, at=at)
    offer.old.extended_support_price_id = "price_es_repriced"
    offer.old.save(update_fields=["extended_support_price_id"])
    second = checkout(offer, at=at)
    assert first.idempotency_key != second.idempotency_key


def test_customer_portal_session_names_the_customer_and_return_url_with_a_key(world, stripe_api):
    url = billing_services.billing_portal_session_create(
        org=world.org, return_url="http://testserver/o/acme/billing/"
    )
    [portal] = stripe_api.posts("/v1/billing_portal/sessions")
    assert portal.form["return_url"] == "http://testserver/o/acme/billing/"
    assert portal.form["customer"].startswith("cus_test_")
    assert portal.headers["Idempotency-Key"].startswith(f"vcp-portal-{world.org.pk}-")
    assert url.startswith(stripe_api.url + "/portal/")


@pytest.mark.parametrize(
    ("status", "error"), [(400, billing_stripe.StripeRefused), (503, billing_stripe.StripeUnavailable)]
)
def test_a_stripe_error_becomes_a_502_application_error_and_writes_nothing(offer, stripe_api, status, error):
    stripe_api.fail_with = status
    with pytest.raises(error) as exc:
        checkout(offer)
    assert exc.value.status_code == 502
    assert Organization.objects.get(pk=offer.org.pk).stripe_customer_id == ""


def test_checkout_of_a_snapshot_without_an_offer_sends_nothing_to_stripe(world, stripe_api):
    world.old.deprecated_at = f.days(-10)
    world.old.save(update_fields=["deprecated_at"])
    with pytest.raises(ApplicationError) as exc:
        checkout(world)
    assert exc.value.status_code == 409
    assert stripe_api.requests == []
