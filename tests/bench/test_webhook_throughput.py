"""Webhook deliveries over kept-alive connections (issue #17, item 1) against a new connection per
delivery (`WEBHOOK_POOL_MAX_IDLE = 0`), in the same run, to one endpoint whose receiver runs in a process
of its own on 127.0.0.1: plain HTTP and TLS, the transport alone (`webhooks.post`: check, connect or
reuse, POST, read the answer) and the whole attempt (`services.webhook_attempt`: claim, sign, POST,
record). The receiver counts the connections it accepted, so each figure says how many were opened.

  .venv/bin/python -m pytest tests/bench/test_webhook_throughput.py -s -p no:cacheprovider
  (DATABASE_URL=postgres://… TEST_DB_NAME=… for the attempts on PostgreSQL; BENCH_WEBHOOKS=500)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import multiprocessing
import os
import ssl
import statistics
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notifications import services, webhooks
from notifications.models import DeliveryStatus, WebhookDelivery
from tests.notifications.test_webhook_ssrf import loopback_only  # noqa: F401 -- autouse: loopback only

pytestmark = pytest.mark.django_db

DELIVERIES = int(os.environ.get("BENCH_WEBHOOKS", 500))
ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", 3))
# About the size of a real notice payload (snapshot, dates, replacement, organisation).
BODY = '{"data":{"milestone":"announced","organization":"bench","snapshot":{"id":"chat-2025-01-01",' + (
    '"deprecated_at":"2026-01-01T00:00:00+00:00","retires_at":"2026-07-01T00:00:00+00:00",'
    '"replacement":"chat-2025-06-01"}},"timestamp":"2026-01-01T00:00:00+00:00","type":"snapshot.deprecated"}'
)
SIGNATURE = "v1," + "A" * 44


def serve(port, certfile, keyfile, connections, requests, ready) -> None:
    """The receiver (in its own process): HTTP/1.1 keep-alive, each POST read and answered 200."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def setup(self):
            super().setup()
            with connections.get_lock():
                connections.value += 1

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with requests.get_lock():
                requests.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.handle_error = lambda request, address: None
    if certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    ready.set()
    server.serve_forever(poll_interval=0.1)


def _loopback_certificate(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


class Receiver:
    def __init__(self, scheme: str, tmp_path) -> None:
        from tests.processes import free_port

        context = multiprocessing.get_context("fork")  # the child only serves HTTP; it never returns here
        self.connections, self.requests = context.Value("i", 0), context.Value("i", 0)
        port = free_port()
        self.certfile, keyfile = _loopback_certificate(tmp_path) if scheme == "https" else ("", "")
        ready = context.Event()
        self.process = context.Process(
            target=serve,
            args=(port, self.certfile, keyfile, self.connections, self.requests, ready),
            daemon=True,
        )
        self.process.start()
        assert ready.wait(15), "the receiver did not start"
        self.url = f"{scheme}://127.0.0.1:{port}/hook"

    def counts(self) -> tuple[int, int]:
        return self.connections.value, self.requests.value

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


@pytest.fixture(params=["http", "https"])
def receiver(request, settings, monkeypatch, tmp_path):
    settings.WEBHOOKS_ALLOW_PRIVATE = (
        True  # 127.0.0.1, and nothing else: the URL is a literal loopback address
    )
    settings.DEBUG = True
    receiver = Receiver(request.param, tmp_path)
    if receiver.certfile:
        trusting = ssl.create_default_context
        monkeypatch.setattr(
            webhooks.ssl, "create_default_context", lambda: trusting(cafile=receiver.certfile)
        )
    webhooks.pool_clear()
    yield receiver
    webhooks.pool_clear()
    receiver.stop()


def _timed(receiver: Receiver, settings, *, reuse: bool, deliver) -> tuple[float, int]:
    """Seconds for DELIVERIES calls of `deliver(i)` and the connections the receiver accepted."""
    settings.WEBHOOK_POOL_MAX_IDLE = 32 if reuse else 0
    webhooks.pool_clear()
    connections_before, requests_before = receiver.counts()
    started = time.perf_counter()
    for i in range(DELIVERIES):
        deliver(i)
    seconds = time.perf_counter() - started
    connections, requests = receiver.counts()
    assert requests - requests_before == DELIVERIES
    return seconds, connections - connections_before


def _compare(receiver: Receiver, settings, deliver, what: str) -> None:
    for i in range(20):  # warm up both paths (imports, TLS context, first connection)
        settings.WEBHOOK_POOL_MAX_IDLE = 32 if i % 2 else 0
        deliver(-1 - i)
    fresh, reused = [], []
    for _ in range(ROUNDS):  # interleaved, so a change in the machine's load touches both
        seconds, opened = _timed(receiver, settings, reuse=False, deliver=deliver)
        assert opened == DELIVERIES
        fresh.append(seconds)
        seconds, opened = _timed(receiver, settings, reuse=True, deliver=deliver)
        assert opened == 1
        reused.append(seconds)
    fresh_s, reused_s = statistics.median(fresh), statistics.median(reused)
    scheme = receiver.url.split(":", 1)[0]
    print(
        f"\n{what} ({scheme}), {DELIVERIES} deliveries, median of {ROUNDS} rounds: "
        f"new connection each {fresh_s:.3f} s ({DELIVERIES / fresh_s:.0f}/s, {DELIVERIES} connections), "
        f"reused {reused_s:.3f} s ({DELIVERIES / reused_s:.0f}/s, 1 connection): "
        f"reuse is {fresh_s / reused_s:.2f}x the rate. Rounds fresh {[round(s, 3) for s in fresh]}, "
        f"reused {[round(s, 3) for s in reused]}"
    )


def test_transport_throughput_with_and_without_connection_reuse(receiver, settings):
    def deliver(i: int) -> None:
        headers = {
            "webhook-id": f"msg_{i}",
            "webhook-timestamp": "1767225600",
            "webhook-signature": SIGNATURE,
        }
        result = webhooks.post(url=receiver.url, body=BODY, headers=headers)
        assert result.status == 200, result.error

    _compare(receiver, settings, deliver, "webhooks.post")


def test_attempt_throughput_with_and_without_connection_reuse(receiver, settings, world):
    endpoint = services.webhook_endpoint_create(
        org=world.org, url=receiver.url, events=["snapshot.deprecated"]
    )
    payload = {
        "type": "snapshot.deprecated",
        "data": {"organization": world.org.slug, "milestone": "announced"},
    }
    ids = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                event_type="snapshot.deprecated",
                msg_id=f"msg_{uuid.uuid4().hex}",
                payload=payload,
            )
            for _ in range(20 + 2 * ROUNDS * DELIVERIES)
        ]
    )
    pending = iter(delivery.pk for delivery in ids)

    def deliver(i: int) -> None:
        delivered = services.webhook_attempt(delivery_id=next(pending))
        assert delivered.status == DeliveryStatus.SUCCEEDED, delivered.last_error

    _compare(receiver, settings, deliver, "services.webhook_attempt")
