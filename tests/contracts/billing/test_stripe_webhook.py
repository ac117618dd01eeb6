"""The Stripe webhook: signatures (Stripe's documented scheme, signed locally), storage once per event
id, processing in a Celery task that re-reads the object from the (stand-in) Stripe API."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from contracts.billing import services as billing
from contracts.models import (
    ConsentRecord,
    ContractTerms,
    ExtendedSupport,
    LedgerAction,
    Organization,
    StripeEvent,
)
from tests import factories as f
from tests.conftest import requires_postgres
from tests.contracts import stripe_standin as standin

pytestmark = pytest.mark.django_db

URL = "/api/v1/stripe/webhook/"


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a body to the webhook with a signature (a valid one unless given), running on-commit tasks."""

    def post(body: str, signature: str | None = "valid", *, http: Client | None = None):
        headers = {}
        if signature == "valid":
            signature = standin.sign(body)
        if signature is not None:
            headers["HTTP_STRIPE_SIGNATURE"] = signature
        with django_capture_on_commit_callbacks(execute=True):
            return (http or client).post(URL, data=body, content_type="application/json", **headers)

    return post


def open_session(stripe_api, world, *, session_id: str = "cs_test_paid") -> dict:
    """A Checkout session as Stripe holds it after our checkout call."""
    stripe_api.checkout_sessions[session_id] = {
        "id": session_id,
        "object": "checkout.session",
        "status": "open",
        "payment_status": "unpaid",
        "customer": "cus_test_acme",
        "subscription": None,
        "metadata": {
            "purpose": "extended-support",
            "org": world.org.slug,
            "org_id": str(world.org.pk),
            "snapshot": world.old.name,
            "until": world.old.extended_support_until.isoformat(),
            "actor_id": str(world.admin.pk),
            "actor_email": world.admin.email,
        },
    }
    return stripe_api.checkout_sessions[session_id]


# ---- bad input: 400 and nothing stored -------------------------------------------------------


def test_missing_signature_is_refused_and_nothing_is_stored(stripe_api, deliver):
    response = deliver(standin.event("invoice.paid", {"id": "in_1"}), signature=None)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"Stripe-Signature": "Required."}
    assert StripeEvent.objects.count() == 0


def test_signature_made_with_another_secret_is_refused_and_nothing_is_stored(stripe_api, deliver):
    body = standin.event("invoice.paid", {"id": "in_1"})
    response = deliver(body, signature=standin.sign(body, secret="whsec_someone_else"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_signature"
    assert StripeEvent.objects.count() == 0


def test_a_body_changed_after_signing_is_refused(stripe_api, deliver):
    body = standin.event("invoice.paid", {"id": "in_1"})
    response = deliver(body.replace("in_1", "in_2"), signature=standin.sign(body))
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


@pytest.mark.parametrize("age", [301, 3600])
def test_a_timestamp_older_than_the_300_second_tolerance_is_refused(stripe_api, deliver, age):
    body = standin.event("invoice.paid", {"id": "in_1"})
    response = deliver(body, signature=standin.sign(body, timestamp=int(time.time()) - age))
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_a_timestamp_inside_the_tolerance_is_accepted(stripe_api, deliver):
    body = standin.event("invoice.paid", {"id": "in_1"})
    assert deliver(body, signature=standin.sign(body, timestamp=int(time.time()) - 250)).status_code == 200


def test_a_signed_body_that_is_not_an_event_is_refused(stripe_api, deliver):
    body = json.dumps({"hello": "world"})
    assert deliver(body).status_code == 400
    assert deliver("not json").status_code == 400
    assert StripeEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body", ["[]", '["evt_1", "invoice.paid"]', '"evt"', "42", "null", "true", "[" * 5000]
)
def test_a_correctly_signed_body_that_is_not_a_json_object_is_a_400_not_a_500(stripe_api, deliver, body):
    """Issue #15, item 6: the SDK's construct_event crashed on these (a 500)."""
    response = deliver(body)
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["fields"] == {"body": response.json()["error"]["fields"]["body"]}
    assert StripeEvent.objects.count() == 0


@pytest.mark.parametrize("ahead", [301, 3600, 10**7])
def test_a_timestamp_in_the_future_beyond_the_tolerance_is_refused_like_an_old_one(
    stripe_api, deliver, ahead
):
    body = standin.event("invoice.paid", {"id": "in_1"})
    response = deliver(body, signature=standin.sign(body, timestamp=int(time.time()) + ahead))
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_signature"
    assert "future" in response.json()["error"]["message"]
    assert StripeEvent.objects.count() == 0


def test_a_timestamp_slightly_ahead_inside_the_tolerance_is_accepted(stripe_api, deliver):
    body = standin.event("invoice.paid", {"id": "in_1"})
    assert deliver(body, signature=standin.sign(body, timestamp=int(time.time()) + 250)).status_code == 200


def test_an_event_created_in_the_future_beyond_the_tolerance_is_refused(stripe_api, deliver):
    data = json.loads(standin.event("invoice.paid", {"id": "in_1"}))
    data["created"] = int(time.time()) + 86400
    response = deliver(json.dumps(data))
    assert response.status_code == 400 and "created" in response.json()["error"]["fields"]
    assert StripeEvent.objects.count() == 0


def test_without_a_webhook_secret_every_delivery_is_refused(settings, deliver):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = standin.event("invoice.paid", {"id": "in_1"})
    response = deliver(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "billing_not_configured"
    assert StripeEvent.objects.count() == 0


# ---- storage, replay, unknown types ----------------------------------------------------------


def test_the_webhook_needs_no_session_key_or_csrf_token(stripe_api, deliver):
    body = standin.event("invoice.paid", {"id": "in_1"})
    response = deliver(body, http=Client(enforce_csrf_checks=True))
    assert response.status_code == 200


def test_unknown_event_type_is_stored_acknowledged_and_ignored(stripe_api, deliver):
    body = standin.event("invoice.paid", {"id": "in_1"}, event_id="evt_unknown")
    response = deliver(body)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False, "event_id": "evt_unknown"}
    event = StripeEvent.objects.get(event_id="evt_unknown")
    assert event.type == "invoice.paid"
    assert event.processed_at is not None and event.error == ""
    assert stripe_api.requests == [], "nothing is read back for a type billing does not handle"


def test_a_replayed_event_is_a_no_op(offer, stripe_api, deliver):
    session = open_session(stripe_api, offer)
    stripe_api.complete(session["id"])
    body = standin.event("checkout.session.completed", {"id": session["id"]}, event_id="evt_once")
    assert deliver(body).json()["duplicate"] is False
    processed_at = StripeEvent.objects.get(event_id="evt_once").processed_at
    reads = len(stripe_api.requests)
    replay = deliver(body)
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    assert StripeEvent.objects.filter(event_id="evt_once").count() == 1
    assert StripeEvent.objects.get(event_id="evt_once").processed_at == processed_at
    assert len(stripe_api.requests) == reads, "a replay of a processed event reads and writes nothing"
    assert ExtendedSupport.objects.count() == 1
    assert ConsentRecord.objects.filter(action=LedgerAction.EXTENDED_SUPPORT).count() == 1


# ---- checkout.session.completed --------------------------------------------------------------


def test_completed_checkout_grants_extended_support_from_the_session_stripe_holds(offer, stripe_api, deliver):
    session = open_session(stripe_api, offer)
    stripe_api.complete(session["id"], subscription="sub_es_1")
    stripe_api.subscriptions["sub_es_1"] = standin.subscription(
        "sub_es_1", metadata={"purpose": "extended-support"}, price="price_es_test"
    )
    # The payload is deliberately thin and stale: the handler trusts only what it reads back.
    body = standin.event("checkout.session.completed", {"id": session["id"], "status": "open"})
    assert deliver(body).status_code == 200
    grant = ExtendedSupport.objects.get()
    assert (grant.organization, grant.snapshot) == (offer.org, offer.old)
    assert grant.until == offer.old.extended_support_until
    assert grant.stripe_checkout_session_id == session["id"]
    assert grant.stripe_subscription_id == "sub_es_1"
    assert grant.cancelled_at is None
    record = ConsentRecord.objects.get(organization=offer.org, action=LedgerAction.EXTENDED_SUPPORT)
    assert record.actor_email == offer.admin.email
    assert record.details["until"] == grant.until.isoformat()
    assert Organization.objects.get(pk=offer.org.pk).stripe_customer_id == "cus_test_acme"
    assert [r.path for r in stripe_api.requests] == [
        f"/v1/checkout/sessions/{session['id']}",
        "/v1/subscriptions/sub_es_1",
    ]


def test_a_completed_event_for_a_session_stripe_says_is_unpaid_grants_nothing(offer, stripe_api, deliver):
    session = open_session(stripe_api, offer)
    stripe_api.complete(session["id"], paid=False)
    body = standin.event("checkout.session.completed", {"id": session["id"], "payment_status": "paid"})
    assert deliver(body).status_code == 200
    assert ExtendedSupport.objects.count() == 0
    assert StripeEvent.objects.get().processed_at is not None


def test_a_grant_past_the_end_of_extended_support_is_refused_and_recorded_on_the_event(
    offer, stripe_api, deliver
):
    session = open_session(stripe_api, offer)
    stripe_api.complete(session["id"])
    # Staff shortened the offer after the customer paid: the session's `until` is now past the end.
    offer.old.extended_support_until = f.days(60)
    offer.old.save(update_fields=["extended_support_until"])
    assert deliver(standin.event("checkout.session.completed", {"id": session["id"]})).status_code == 200
    assert ExtendedSupport.objects.count() == 0
    assert ConsentRecord.objects.filter(action=LedgerAction.EXTENDED_SUPPORT).count() == 0
    event = StripeEvent.objects.get()
    assert event.processed_at is not None
    assert "past it" in event.error


def test_stripe_unreachable_leaves_the_event_unprocessed_for_a_retry(offer, stripe_api, deliver, settings):
    from portal.celery import app

    app.conf.task_eager_propagates = False  # the eager task's retry is not the test's concern here
    try:
        stripe_api.fail_with = 503
        session = open_session(stripe_api, offer)
        deliver(standin.event("checkout.session.completed", {"id": session["id"]}, event_id="evt_retry"))
    finally:
        app.conf.task_eager_propagates = True
    event = StripeEvent.objects.get(event_id="evt_retry")
    assert event.processed_at is None and "Stripe could not" in event.error
    # Once Stripe answers, the redelivered event is processed (replays of unprocessed events re-queue).
    stripe_api.fail_with = None
    stripe_api.complete(session["id"])
    body = StripeEvent.objects.get(event_id="evt_retry").payload
    assert deliver(json.dumps(body)).json()["duplicate"] is True
    assert StripeEvent.objects.get(event_id="evt_retry").processed_at is not None
    assert ExtendedSupport.objects.count() == 1


def test_a_session_stripe_does_not_know_is_recorded_as_refused_not_retried(offer, stripe_api, deliver):
    assert deliver(standin.event("checkout.session.completed", {"id": "cs_unknown"})).status_code == 200
    event = StripeEvent.objects.get()
    assert event.processed_at is not None and "Stripe refused" in event.error
    assert len(stripe_api.requests) == 1, "an unknown object is not asked for again"
    assert ExtendedSupport.objects.count() == 0


# ---- out of order: deletion before completion ------------------------------------------------


def test_subscription_deleted_before_checkout_completed_ends_the_grant_at_the_period_end(
    offer, stripe_api, deliver, mailoutbox
):
    session = open_session(stripe_api, offer)
    stripe_api.complete(session["id"], subscription="sub_es_2")
    period_end = int(f.days(20).timestamp())
    stripe_api.subscriptions["sub_es_2"] = standin.subscription(
        "sub_es_2", status="canceled", metadata={"purpose": "extended-support"}, period_end=period_end
    )
    deleted = standin.event("customer.subscription.deleted", {"id": "sub_es_2"})
    completed = standin.event("checkout.session.completed", {"id": session["id"]})
    assert deliver(deleted).status_code == 200
    assert ExtendedSupport.objects.count() == 0
    assert deliver(completed).status_code == 200
    grant = ExtendedSupport.objects.get()
    assert grant.cancelled_at is not None
    assert int(grant.until.timestamp()) == period_end
    actions = list(ConsentRecord.objects.filter(organization=offer.org).values_list("action", flat=True))
    assert actions[-2:] == [LedgerAction.EXTENDED_SUPPORT, LedgerAction.EXTENDED_SUPPORT_END]
    [notice] = [m for m in mailoutbox if offer.admin.email in m.to]
    assert {m.subject for m in mailoutbox} == {notice.subject}, "one notice, one subject, to each recipient"
    assert offer.old.name in notice.subject


def test_subscription_deleted_after_the_grant_ends_it_at_the_period_end_once(offer, stripe_api, deliver):
    session = open_session(stripe_api, offer)
    stripe_api.complete(session["id"], subscription="sub_es_3")
    stripe_api.subscriptions["sub_es_3"] = standin.subscription(
        "sub_es_3", metadata={"purpose": "extended-support"}
    )
    deliver(standin.event("checkout.session.completed", {"id": session["id"]}))
    period_end = int(f.days(25).timestamp())
    stripe_api.subscriptions["sub_es_3"] = standin.subscription(
        "sub_es_3", status="canceled", metadata={"purpose": "extended-support"}, period_end=period_end
    )
    deliver(standin.event("customer.subscription.deleted", {"id": "sub_es_3"}))
    deliver(standin.event("customer.subscription.deleted", {"id": "sub_es_3"}))  # a second delivery, new id
    grant = ExtendedSupport.objects.get()
    assert int(grant.until.timestamp()) == period_end
    assert ConsentRecord.objects.filter(action=LedgerAction.EXTENDED_SUPPORT_END).count() == 1


# ---- tiers -----------------------------------------------------------------------------------


def make_terms(version: str, tier: str, days_ago: int) -> ContractTerms:
    body = f"Terms {version} for {tier}."
    return ContractTerms.objects.create(
        version=version,
        title=f"{tier.title()} terms",
        tier=tier,
        body=body,
        body_sha256=ContractTerms.hash_body(body),
        effective_at=f.days(-days_ago),
        retired_bug_policy="Reproduced while the artifact is retained.",
    )


def test_subscription_price_metadata_sets_the_tier_and_proposes_its_newest_terms(world, stripe_api, deliver):
    make_terms("ent-1", "enterprise", 300)
    newest = make_terms("ent-2", "enterprise", 10)
    make_terms("std-9", "standard", 1)
    Organization.objects.filter(pk=world.org.pk).update(stripe_customer_id="cus_acme")
    stripe_api.subscriptions["sub_tier"] = standin.subscription(
        "sub_tier", customer="cus_acme", price="price_ent", price_metadata={"tier": "enterprise"}
    )
    assert deliver(standin.event("customer.subscription.created", {"id": "sub_tier"})).status_code == 200
    org = Organization.objects.get(pk=world.org.pk)
    assert org.tier == "enterprise"
    assert org.offered_terms == newest
    assert org.accepted_terms is None, "offered terms apply only once accepted through the ledger"
    assert org.stripe_subscription_id == "sub_tier"


def test_tier_events_delivered_out_of_order_end_in_the_state_stripe_holds(
    world, stripe_api, deliver, settings
):
    settings.STRIPE_PRICE_TIERS = {"price_ent": "enterprise", "price_std": "standard"}
    Organization.objects.filter(pk=world.org.pk).update(stripe_customer_id="cus_acme")
    # Stripe now holds: the subscription upgraded to enterprise. The older "standard" update is
    # delivered last, but its object is read back as it is now.
    stripe_api.subscriptions["sub_t"] = standin.subscription("sub_t", customer="cus_acme", price="price_ent")
    newer = standin.event("customer.subscription.updated", {"id": "sub_t", "items": "enterprise"})
    older = standin.event("customer.subscription.updated", {"id": "sub_t", "items": "standard"})
    deliver(newer)
    deliver(older)
    assert Organization.objects.get(pk=world.org.pk).tier == "enterprise"


def test_an_old_subscription_ending_after_its_successor_started_keeps_the_tier(world, stripe_api, deliver):
    Organization.objects.filter(pk=world.org.pk).update(stripe_customer_id="cus_acme")
    meta = {"tier": "enterprise"}
    stripe_api.subscriptions["sub_new"] = standin.subscription(
        "sub_new", customer="cus_acme", price_metadata=meta
    )
    stripe_api.subscriptions["sub_old"] = standin.subscription(
        "sub_old", status="canceled", customer="cus_acme", price_metadata={"tier": "plus"}
    )
    deliver(standin.event("customer.subscription.created", {"id": "sub_new"}))
    deliver(standin.event("customer.subscription.deleted", {"id": "sub_old"}))
    org = Organization.objects.get(pk=world.org.pk)
    assert (org.tier, org.stripe_subscription_id) == ("enterprise", "sub_new")
    # The current subscription ending drops the organisation to the default tier.
    stripe_api.subscriptions["sub_new"]["status"] = "canceled"
    deliver(standin.event("customer.subscription.deleted", {"id": "sub_new"}))
    org = Organization.objects.get(pk=world.org.pk)
    assert (org.tier, org.stripe_subscription_id) == ("standard", "")


# ---- concurrency (PostgreSQL) ----------------------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_of_one_event_store_it_once(settings):
    import threading

    from django.db import connection

    settings.STRIPE_WEBHOOK_SECRET = standin.WEBHOOK_SECRET
    body = standin.event("invoice.paid", {"id": "in_race"}, event_id="evt_race")
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def receive() -> None:
        try:
            barrier.wait()
            _event, created = billing.stripe_event_receive(
                payload=body.encode(), signature=standin.sign(body)
            )
            results.append(created)
        finally:
            connection.close()

    threads = [threading.Thread(target=receive) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert StripeEvent.objects.filter(event_id="evt_race").count() == 1
