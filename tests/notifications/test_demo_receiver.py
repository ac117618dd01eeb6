"""The demo's webhook receiver (issue #13, item 11): loopback is allowed as a webhook address only
with DEBUG on, and the receiver started by `make run` takes real, signed deliveries."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import pytest

from contracts.errors import ApplicationError
from notifications import services, webhooks
from notifications.models import DeliveryStatus
from portal.management.commands.demo_webhook_receiver import make_handler

pytestmark = pytest.mark.django_db


def test_only_the_demo_receiver_on_loopback_is_allowed_and_only_in_debug(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.DEMO_WEBHOOK_PORT = 8002
    settings.DEBUG = False
    with pytest.raises(ApplicationError):
        webhooks.validate_url("http://127.0.0.1:8002/hooks/acme")
    settings.DEBUG = True
    webhooks.validate_url("http://127.0.0.1:8002/hooks/acme")
    webhooks.validate_url("http://localhost:8002/hooks/acme")
    with pytest.raises(ApplicationError):
        webhooks.validate_url("http://127.0.0.1:8000/admin/")  # another loopback port: never
    with pytest.raises(ApplicationError):
        webhooks.validate_url("http://10.0.0.8:8002/hooks/acme")  # another private network: never


def test_the_demo_receiver_takes_a_real_signed_delivery(world, settings, tmp_path):
    settings.DEBUG = True
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    log = tmp_path / "receiver.log"
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(log))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.DEMO_WEBHOOK_PORT = server.server_address[1]
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/acme"
        endpoint = services.webhook_endpoint_create(org=world.org, url=url, events=["pin.moved"])
        delivery = services.webhook_send_test(endpoint=endpoint)
        result = services.webhook_attempt(delivery_id=delivery.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == DeliveryStatus.SUCCEEDED and result.response_status == 204
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["path"] == "/hooks/acme" and entry["webhook-id"] == delivery.msg_id
    assert json.loads(entry["body"])["type"] == "webhook.test"
