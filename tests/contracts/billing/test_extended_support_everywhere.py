"""Extended support everywhere (issue #13, item 4) and links a person can follow (item 6): one
effective retirement date drives the dashboard, timeline, snapshot and migration pages, the
Sunset header, the calendar and notices; the offer shows a price and asks for confirmation."""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime

import pytest
from django.core.cache import cache

from contracts.billing import services as billing
from contracts.billing.stripe import price_text
from contracts.models import ExtendedSupport, LedgerAction, Snapshot
from contracts.pins import hotpath
from contracts.pins.selectors import effective_retirement
from contracts.templatetags.instants import instant
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_effective_retirement_is_the_later_of_retirement_and_the_grant(offer):
    assert effective_retirement(org=offer.org, snapshot=offer.old).effective == offer.old.retires_at
    grant = billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    retirement = effective_retirement(org=offer.org, snapshot=offer.old)
    assert retirement.effective == grant.until == offer.old.extended_support_until
    assert retirement.extended and retirement.retires_at == offer.old.retires_at
    # Another organisation's date does not move.
    assert effective_retirement(org=offer.other_org, snapshot=offer.old).effective == offer.old.retires_at


def test_a_grant_cut_short_ends_at_its_paid_period(offer):
    grant = billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    cut = offer.old.retires_at + dt.timedelta(days=10)
    billing.extended_support_cancel(grant=grant, ends_at=cut, reason="cancelled")
    assert effective_retirement(org=offer.org, snapshot=offer.old).effective == cut


def test_the_dashboard_counts_and_countdown_follow_the_grant(offer, client):
    client.force_login(offer.admin)
    before = client.get("/o/acme/").context
    assert before["summary"]["retiring_soon"] == 1
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    page = client.get("/o/acme/")
    summary = page.context["summary"]
    assert summary["retiring_soon"] == 0 and summary["extended"] == 1
    (pin,) = page.context["pins"]
    assert pin.days_until_retirement in (149, 150)
    html = page.content.decode()
    assert "on extended support" in html
    assert instant(offer.old.extended_support_until) in html


def test_the_timeline_draws_the_grant_as_its_own_band(offer, client):
    client.force_login(offer.admin)
    assert "seg-extended" not in client.get("/o/acme/timeline/").content.decode()
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    html = client.get("/o/acme/timeline/").content.decode()
    assert html.count('class="seg seg-extended"') == 1
    assert "Your extended support, until" in html


def test_the_sunset_header_gives_the_end_of_extended_support(offer, api, settings):
    response = api.get("/api/v1/resolve/v1-chat/", key=offer.key)
    assert parsedate_to_datetime(response["Sunset"]) == offer.old.retires_at.replace(microsecond=0)
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    hotpath.forget()
    for _ in range(2):  # the full view, then the warm path
        response = api.get("/api/v1/resolve/v1-chat/", key=offer.key)
        assert parsedate_to_datetime(response["Sunset"]) == offer.old.extended_support_until.replace(
            microsecond=0
        )


def test_links_name_a_readable_page_and_the_newest_active_successor(offer, api, client):
    # `current` (the replacement) is itself deprecated now; a newer snapshot is active.
    Snapshot.objects.filter(pk=offer.current.pk).update(deprecated_at=f.days(-1))
    newest = f.SnapshotFactory(family=offer.family, name="chat-2025-10-01", released_at=f.days(-5))
    f.SnapshotFactory(family=offer.family, name="chat-preview", released_at=f.days(5))
    link = api.get("/api/v1/resolve/v1-chat/", key=offer.key)["Link"]
    assert 'rel="deprecation"; type="text/html"' in link
    assert f"/snapshots/{offer.old.name}/deprecation/" in link
    assert f'/api/v1/snapshots/{newest.name}/>; rel="successor-version"' in link
    assert offer.current.name not in link
    # The page is public, readable and carries no customer data.
    page = client.get(f"/snapshots/{offer.old.name}/deprecation/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert newest.name in html and "Retires (stops serving)" in html
    assert "Acme" not in html and "acme" not in html and "v1-chat" not in html


def test_the_resolve_schema_documents_the_lifecycle_headers(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/resolve/{alias}/"]["get"]
    assert "Sunset" in operation["description"] and "successor-version" in operation["description"]
    assert {"Deprecation", "Sunset", "Link"} <= set(operation["responses"]["200"]["headers"])


def test_the_price_comes_from_stripe_or_the_configured_price(offer, stripe_api, settings):
    cache.clear()
    stripe_api.prices["price_es_test"] = {
        "unit_amount": 12000,
        "currency": "eur",
        "recurring": {"interval": "month", "interval_count": 1},
    }
    assert price_text("price_es_test") == "EUR 120.00 per month"
    assert price_text("price_es_test") == "EUR 120.00 per month"
    assert len([r for r in stripe_api.requests if r.path == "/v1/prices/price_es_test"]) == 1  # cached
    settings.EXTENDED_SUPPORT_PRICES = {"price_es_test": "EUR 99 per month (contract price)"}
    assert price_text("price_es_test") == "EUR 99 per month (contract price)"


def test_buying_asks_for_confirmation_with_the_price_and_is_not_offered_once_bought(
    offer, client, stripe_api
):
    cache.clear()
    stripe_api.prices["price_es_test"] = {
        "unit_amount": 12000,
        "currency": "eur",
        "recurring": {"interval": "month"},
    }
    client.force_login(offer.admin)
    billing_page = client.get("/o/acme/billing/").content.decode()
    assert "EUR 120.00 per month" in billing_page
    confirm = client.get(f"/o/acme/billing/extended-support/{offer.old.name}/").content.decode()
    assert "EUR 120.00 per month" in confirm and 'name="confirm"' in confirm
    refused = client.post("/o/acme/billing/checkout/", {"snapshot": offer.old.name})
    assert refused.status_code == 400 and "Tick the box to confirm" in refused.content.decode()
    assert not stripe_api.posts("/v1/checkout/sessions")
    billing.extended_support_grant(org=offer.org, snapshot=offer.old)
    assert client.get(f"/o/acme/billing/extended-support/{offer.old.name}/").status_code == 409
    assert "Already covered" in client.get("/o/acme/billing/").content.decode()


def test_a_second_simulated_purchase_is_refused_and_writes_nothing(offer, client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.DEBUG = True
    client.force_login(offer.admin)
    data = {"snapshot": offer.old.name, "confirm": "yes"}
    assert client.post("/o/acme/billing/simulate/", data).status_code == 302
    assert client.post("/o/acme/billing/simulate/", data).status_code == 409
    assert ExtendedSupport.objects.count() == 1
    assert offer.org.consent_records.filter(action=LedgerAction.EXTENDED_SUPPORT).count() == 1


def test_moving_off_the_snapshot_withdraws_the_offer(offer, client):
    from contracts.pins import services as pins

    pins.pin_set(org=offer.org, alias=offer.alias, snapshot=offer.current)
    client.force_login(offer.admin)
    assert (
        "Extended support is offered"
        not in client.get(f"/o/acme/snapshots/{offer.old.name}/").content.decode()
    )
    assert client.get(f"/o/acme/billing/extended-support/{offer.old.name}/").status_code == 409
