"""Webhook SSRF (issue #15, item 3): only globally routable addresses, resolved once and connected to
as checked, and a refused delivery recorded as "refused" with nothing about the target.

No test here sends a packet outside 127.0.0.0/8: names resolve through a stand-in resolver, a refused
address is asserted refused before any socket is opened (the connect seam fails the test if called),
and where a delivery must go through, the connect seam records the checked public address and opens
the socket to a receiver on loopback instead.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts.errors import ApplicationError
from notifications import services, webhooks
from notifications.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"  # example.com's documented address: never contacted, only named


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Belt and braces: any socket of this module's tests that tries to leave 127.0.0.0/8 fails."""
    import ipaddress

    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if not ipaddress.ip_address(host).is_loopback:
            raise AssertionError(f"a test tried to connect outside loopback: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.mark.parametrize(
    "address",
    [
        "100.64.0.1",  # shared address space (carrier-grade NAT): not private, not global
        "100.127.255.254",
        "192.0.0.8",  # IETF protocol assignments
        "192.88.99.1",  # 6to4 relay anycast
        "198.18.0.1",  # benchmarking
        "224.0.0.1",  # multicast (is_global is true for it)
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "10.1.2.3",
        "127.0.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "192.168.1.1",
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::1",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:8.8.8.8",
        "::10.0.0.1",  # IPv4-compatible
        "2001::1",  # Teredo
        "2001:db8::1",
        "fec0::1",  # site-local
        "fc00::1",
        "fe80::1",
        "fe80::1%eth0",
        "::1",
        "::",
        "ff0e::1",  # global-scope multicast
        "3fff::1",
        "5f00::1",
        "not-an-address",
    ],
)
def test_addresses_that_are_not_globally_routable_unicast_are_refused(address):
    assert not webhooks.address_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", PUBLIC, "2606:4700:4700::1111", "2a00:1450::1"])
def test_globally_routable_unicast_addresses_are_allowed(address):
    assert webhooks.address_allowed(address)


class Resolver:
    """Stand-in for webhooks._resolve (the module's one DNS lookup): answers from a script, counts
    lookups. The socket module itself is never patched, so nothing else resolves through it."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.calls: list[tuple] = []

    def __call__(self, host, port):
        self.calls.append((host, port))
        addresses = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        family = lambda a: socket.AF_INET6 if ":" in a else socket.AF_INET  # noqa: E731
        return [(family(a), socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


@pytest.fixture
def policy(settings):
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1


@pytest.fixture
def no_connect(monkeypatch):
    def refuse(address, port, timeout):
        raise AssertionError(f"a refused address was connected to: {address}:{port}")

    monkeypatch.setattr(webhooks, "_connect", refuse)


@pytest.mark.parametrize(
    "answer", [["100.64.0.7"], ["2002:a00:1::1"], [PUBLIC, "10.0.0.5"], ["64:ff9b::a9fe:a9fe"]]
)
def test_registering_a_name_that_resolves_to_a_non_public_address_is_refused_without_saying_where(
    world, policy, no_connect, monkeypatch, answer
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver(answer))
    with pytest.raises(ApplicationError) as refused:
        services.webhook_endpoint_create(
            org=world.org, url="https://hooks.example.com/x", events=["snapshot.deprecated"]
        )
    assert refused.value.fields == {"url": "resolves to a non-public address"}
    assert not any(a in refused.value.message for a in answer)


def test_a_delivery_to_a_name_rebound_to_an_internal_address_is_refused_and_shows_only_refused(
    world, policy, no_connect, monkeypatch, client, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC], ["100.64.0.9"]))
    endpoint = services.webhook_endpoint_create(
        org=world.org, url="https://hooks.example.com/x", events=["snapshot.deprecated"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_send_test(endpoint=endpoint)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status, delivery.attempts) == (DeliveryStatus.REFUSED, None, 1)
    assert delivery.last_error == webhooks.REFUSED and "100.64" not in delivery.last_error
    client.force_login(world.admin)
    page = client.get("/o/acme/notifications/").content.decode()
    log = page.split('id="delivery-log"')[1].split("</table>")[0]
    assert "refused" in log and "HTTP" not in log and "100.64" not in log


def test_the_test_endpoint_records_a_refused_delivery_for_a_non_public_target(
    world, policy, no_connect, monkeypatch, api, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC], ["192.0.0.8"]))
    endpoint = services.webhook_endpoint_create(
        org=world.org, url="https://hooks.example.com/x", events=["snapshot.deprecated"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/webhooks/{endpoint.pk}/test/", key=world.key)
    assert response.status_code == 202
    assert set(response.json()) == {"delivery", "msg_id", "event_type", "status"}
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert (delivery.status, delivery.response_status, delivery.last_error) == (
        DeliveryStatus.REFUSED,
        None,
        webhooks.REFUSED,
    )


class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Recorder.seen.append((self.headers.get("Host"), self.path))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def redirect_to(monkeypatch, port: int) -> list[tuple[str, int]]:
    """The connect seam records where it was asked to connect and connects to loopback instead."""
    asked: list[tuple[str, int]] = []

    def connect(address, port_asked, timeout):
        asked.append((address, port_asked))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # numeric loopback: no lookup at all
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        return sock

    monkeypatch.setattr(webhooks, "_connect", connect)
    return asked


def test_the_delivery_connects_to_the_address_it_checked_with_one_lookup(
    world, policy, settings, monkeypatch, loopback_server
):
    """DNS rebinding: a second lookup would answer 10.0.0.1; there is none between check and connect."""
    settings.DEBUG = True  # plain http allowed; the address policy stays on
    resolver = Resolver([PUBLIC], ["10.0.0.1"])
    monkeypatch.setattr(webhooks, "_resolve", resolver)
    asked = redirect_to(monkeypatch, loopback_server.server_address[1])
    result = webhooks.post(url="http://hooks.example.com:8080/in?x=1", body="{}", headers={})
    assert (result.status, result.refused) == (204, False)
    assert len(resolver.calls) == 1 and asked == [(PUBLIC, 8080)]
    assert Recorder.seen == [("hooks.example.com:8080", "/in?x=1")]


def test_redirects_are_not_followed(world, policy, settings, monkeypatch):
    class Redirect(Recorder):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", "http://10.0.0.1/")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.DEBUG = True
        monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
        asked = redirect_to(monkeypatch, server.server_address[1])
        result = webhooks.post(url="http://hooks.example.com/in", body="{}", headers={})
    finally:
        server.shutdown()
        server.server_close()
    assert (result.status, result.error) == (307, "HTTP 307") and asked == [(PUBLIC, 80)]


def _certificate(tmp_path, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
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
    return cert_path, key_path


@pytest.mark.parametrize(("cert_name", "ok"), [("hooks.example.com", True), ("other.example.org", False)])
def test_https_sends_sni_and_checks_the_certificate_for_the_name_not_the_address(
    world, policy, monkeypatch, tmp_path, cert_name, ok
):
    cert, key = _certificate(tmp_path, cert_name)
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    Recorder.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trusting = ssl.create_default_context
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: trusting(cafile=str(cert)))
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    asked = redirect_to(monkeypatch, server.server_address[1])
    try:
        result = webhooks.post(url="https://hooks.example.com/in", body="{}", headers={})
    finally:
        server.shutdown()
        server.server_close()
    assert asked == [(PUBLIC, 443)] and names[:1] == ["hooks.example.com"]
    if ok:
        assert result.status == 204 and Recorder.seen == [("hooks.example.com", "/in")]
    else:
        assert result.status is None and result.error == "TLS handshake failed" and Recorder.seen == []


def test_only_the_one_setting_allows_loopback_receivers(world, settings, monkeypatch):
    monkeypatch.setattr(webhooks, "_resolve", Resolver(["127.0.0.1"]))
    settings.DEBUG, settings.WEBHOOKS_ALLOW_PRIVATE = True, False
    with pytest.raises(ApplicationError):
        webhooks.validate_url("http://receiver.local/x")
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    webhooks.validate_url("http://receiver.local/x")
    assert WebhookDelivery.objects.count() == 0
