"""The extended-support purchase in the browser, up to Stripe Checkout (a local stand-in) and back."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from contracts.models import ExtendedSupport
from contracts.templatetags.instants import instant
from tests.browser.conftest import login, screenshot
from tests.contracts import stripe_standin as standin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_buys_extended_support_through_checkout_and_sees_the_grant(
    page, offer, stripe_api, live_server
):
    stripe_api.prices["price_es_test"] = {
        "unit_amount": 12000,
        "currency": "eur",
        "recurring": {"interval": "month"},
    }
    login(page, "acme-admin")
    page.goto("/o/acme/billing/")
    row = page.locator("tr.option-row", has_text=offer.old.name)
    assert "deprecated" in row.inner_text() and "EUR 120.00 per month" in row.inner_text()
    screenshot(page, "billing-before-purchase")

    # One click never buys: a confirmation with the price comes first.
    row.get_by_role("link", name=re.compile("Buy extended support")).click()
    page.wait_for_url(f"**/billing/extended-support/{offer.old.name}/")
    assert "EUR 120.00 per month" in page.locator(".price").inner_text()
    assert page.locator("#confirm").get_attribute("required") is not None
    assert stripe_api.posts("/v1/checkout/sessions") == []
    page.check("#confirm")
    screenshot(page, "billing-confirm")
    page.get_by_role("button", name="Continue to payment (Stripe)").click()
    page.wait_for_url(re.compile(re.escape(stripe_api.url) + r"/pay/cs_test_\w+"))
    session_id = page.url.rsplit("/", 1)[1]
    assert page.locator("h1").inner_text().startswith("Stand-in")
    [created] = stripe_api.posts("/v1/checkout/sessions")
    assert created.form["line_items[0][price]"] == "price_es_test"
    assert created.headers["Idempotency-Key"].startswith("vcp-es-checkout-")

    # Stripe finishes the Checkout and tells the portal, signed with the endpoint secret.
    stripe_api.complete(session_id)
    body = standin.event("checkout.session.completed", {"id": session_id})
    request = urllib.request.Request(
        live_server.url + "/api/v1/stripe/webhook/",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Stripe-Signature": standin.sign(body)},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["received"] is True

    page.goto("/o/acme/billing/?checkout=success")
    grant = ExtendedSupport.objects.get(organization=offer.org)
    grant_row = page.locator("tr.grant-row", has_text=offer.old.name)
    assert instant(grant.until) in grant_row.inner_text()
    assert "Already covered" in page.locator("tr.option-row", has_text=offer.old.name).inner_text()
    screenshot(page, "billing-after-purchase")


def test_member_sees_the_billing_page_without_buy_buttons(page, offer, stripe_api):
    login(page, "acme-member")
    page.goto("/o/acme/billing/")
    assert page.locator("h1").inner_text() == "Billing"
    assert page.get_by_role("button", name=re.compile("Buy extended support")).count() == 0
    assert "An admin can buy it." in page.locator("tr.option-row").inner_text()
