"""Standard Webhooks deliveries to a local HTTP server, verified with the `standardwebhooks` library."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from contracts.errors import ApplicationError
from notifications import services, tasks
from notifications.models import Channel, DeliveryStatus, Notice, WebhookDelivery
from tests import factories as f
from tests.notifications.conftest import deprecate, free_port

pytestmark = pytest.mark.django_db


def test_test_event_is_signed_per_standard_webhooks_and_verifies(
    world, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["snapshot.deprecated"]
    )
    assert endpoint.secret.startswith("whsec_")
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_send_test(endpoint=endpoint)
    ((headers, body),) = webhook_receiver.requests
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers.keys()
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "webhook.test" and payload["data"]["organization"] == "acme"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.response_status == 204
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)


def test_deprecation_reaches_a_subscribed_endpoint_once_with_a_stable_id_across_retries(
    world, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["snapshot.deprecated", "snapshot.retired"]
    )
    deprecate(world.old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=world.current)
    services.notices_plan()
    webhook_receiver.script = [503]
    notice = Notice.objects.get(channel=Channel.WEBHOOK)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_notice.apply(args=[notice.pk]).get()
    delivery = WebhookDelivery.objects.get()
    # Eager mode retries at once: 503, then 200.
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    ids = {headers["webhook-id"] for headers, _ in webhook_receiver.requests}
    assert len(ids) == 1 and ids == {delivery.msg_id}
    payload = Webhook(endpoint.secret).verify(
        webhook_receiver.requests[-1][1], webhook_receiver.requests[-1][0]
    )
    assert payload["type"] == "snapshot.deprecated"
    assert payload["data"]["snapshot"]["id"] == "chat-2025-01-01"
    assert payload["data"]["snapshot"]["replacement"] == "chat-2025-06-01"
    # Sending the notice again creates no second delivery.
    with django_capture_on_commit_callbacks(execute=True):
        tasks.send_notice.apply(args=[notice.pk]).get()
    assert WebhookDelivery.objects.count() == 1 and len(webhook_receiver.requests) == 2


def test_unreachable_endpoint_is_retried_then_marked_failed(
    world, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=f"http://127.0.0.1:{free_port()}/gone", events=["snapshot.deprecated"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_send_test(endpoint=endpoint)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3 and delivery.response_status is None and delivery.last_error


def test_rotated_secret_signs_with_new_and_old_during_overlap(
    world, webhook_receiver, django_capture_on_commit_callbacks
):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["migration.applied"]
    )
    old_secret = endpoint.secret
    endpoint = services.webhook_endpoint_rotate_secret(endpoint=endpoint)
    assert endpoint.secret != old_secret
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_send_test(endpoint=endpoint)
    headers, body = webhook_receiver.requests[-1]
    Webhook(endpoint.secret).verify(body, headers)
    Webhook(old_secret).verify(body, headers)
    assert services.endpoint_secrets(endpoint, timezone.now() + dt.timedelta(days=2)) == [endpoint.secret]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("https://127.0.0.1/hook", "non-public"),
        ("https://10.1.2.3/hook", "non-public"),
        ("https://169.254.169.254/latest/meta-data", "non-public"),
        ("https://[::1]/hook", "non-public"),
        ("https://localhost/hook", "non-public"),
        ("ftp://example.com/x", "http(s)"),
    ],
)
def test_private_loopback_link_local_and_plain_http_endpoints_are_refused(world, settings, url, reason):
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(ApplicationError) as error:
        services.webhook_endpoint_create(org=world.org, url=url, events=["snapshot.deprecated"])
    assert reason in error.value.fields["url"]


def test_delivery_rechecks_the_address_policy(
    world, webhook_receiver, settings, django_capture_on_commit_callbacks
):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["migration.applied"]
    )
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_send_test(endpoint=endpoint)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "must use https" in delivery.last_error
    assert webhook_receiver.requests == []


def test_an_attempt_in_flight_is_not_duplicated_by_a_second_task(world, webhook_receiver):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["migration.applied"]
    )
    delivery = services.webhook_send_test(endpoint=endpoint)  # on_commit not run: still pending
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        lease_until=timezone.now() + dt.timedelta(seconds=60)
    )
    assert services.webhook_attempt(delivery_id=delivery.pk) is None
    assert webhook_receiver.requests == []
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert services.webhook_attempt(delivery_id=delivery.pk).status == DeliveryStatus.SUCCEEDED
    assert len(webhook_receiver.requests) == 1


def test_signed_ledger_checkpoint_reaches_a_subscribed_endpoint_once(
    world, webhook_receiver, django_capture_on_commit_callbacks
):
    from contracts.ledger.chain import ledger_append
    from contracts.ledger.checkpoints import checkpoint_create, checkpoint_deliver, checkpoint_verify

    endpoint = services.webhook_endpoint_create(
        org=world.org, url=webhook_receiver.url, events=["ledger.checkpoint"]
    )
    ledger_append(org=world.org, action="consent", acting_user=world.admin)
    checkpoint = checkpoint_create(org=world.org)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint_deliver(checkpoint=checkpoint)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint_deliver(checkpoint=checkpoint)  # a task that runs twice delivers once
    ((headers, body),) = webhook_receiver.requests
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "ledger.checkpoint"
    sent = payload["data"]["checkpoint"]
    assert (sent["organization"], sent["seq"], sent["head_hash"]) == (
        "acme",
        checkpoint.seq,
        checkpoint.head_hash,
    )
    assert sent["signature"] == checkpoint.signature and checkpoint_verify(checkpoint)
