"""Webhook connection reuse (issue #17, item 1) under #15's guarantee: every attempt resolves and checks
the URL, and a kept-alive connection carries it only if it goes to an address that check just passed.

Same network rule as tests/notifications/test_webhook_ssrf.py, whose pieces are used here: names resolve
through its stand-in resolver, the connect seam records the checked (public, never contacted) address
and opens the socket to a keep-alive receiver on 127.0.0.1 instead, and its autouse guard fails any
socket of these tests that tries to leave loopback.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications import services, webhooks
from notifications.models import DeliveryStatus, WebhookDelivery
from tests.notifications.test_webhook_ssrf import (  # noqa: F401 -- loopback_only: the autouse guard
    PUBLIC,
    Resolver,
    _certificate,
    loopback_only,
)
from tests.notifications.test_worker_redis import workers  # noqa: F401 -- the real-worker fixture

pytestmark = pytest.mark.django_db

OTHER_PUBLIC = "93.184.216.35"  # named, never contacted
URL = "http://hooks.example.com/in"


class KeepAliveReceiver:
    """An HTTP/1.1 server on 127.0.0.1 that keeps connections open and records, per accepted
    connection, the requests it read. `script` answers the next requests, then "ok":
    ok (200, a short body), close (200 with `Connection: close`), hangup (read the request, close
    without answering), stall (read it, answer only at teardown), big (a body over the read bound),
    chunked (a short chunked body)."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.connections: list[list[tuple[dict[str, str], bytes]]] = []
        self.script: list[str] = []
        self.lock = threading.Lock()
        self.open: dict[int, tuple[socket.socket, threading.Event]] = {}
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without this, Nagle holds the body until the client's
            # delayed ACK (40 ms) on every kept-alive exchange. Production servers write them together.
            disable_nagle_algorithm = True

            def setup(self):
                super().setup()
                self.finished = threading.Event()
                with receiver.lock:
                    self.index = len(receiver.connections)
                    receiver.connections.append([])
                    receiver.open[self.index] = (self.connection, self.finished)

            def finish(self):
                try:
                    super().finish()
                finally:
                    self.finished.set()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.connections[self.index].append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    action = receiver.script.pop(0) if receiver.script else "ok"
                if action == "hangup":
                    self.close_connection = True
                    return
                if action == "stall":
                    receiver.release.wait(30)
                if action == "chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n")
                    return
                payload = b"x" * (webhooks.RESPONSE_LIMIT + 1000) if action == "big" else b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                if action == "close":
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # a client going away is expected here
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def accepted(self) -> int:
        return len(self.connections)

    def ids(self) -> list[list[str]]:
        """The `webhook-id` of every request read, per connection."""
        return [[headers.get("webhook-id", "-") for headers, _ in requests] for requests in self.connections]

    def close_idle(self) -> None:
        """Close every open connection from the server's side, as a keep-alive timeout does, and
        wait until each is closed."""
        with self.lock:
            open_now = list(self.open.values())
        for sock, finished in open_now:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
            assert finished.wait(5), "a receiver connection did not close"

    def stop(self) -> None:
        self.release.set()
        self.close_idle()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = KeepAliveReceiver()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def empty_pool():
    webhooks.pool_clear()
    yield
    webhooks.pool_clear()


@pytest.fixture
def public_policy(settings):
    """Plain http allowed (DEBUG), the address policy on: only public answers are delivered to."""
    settings.DEBUG = True
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_POOL_MAX_IDLE = 32
    settings.WEBHOOK_POOL_IDLE_SECONDS = 30


class CountingSocket(socket.socket):
    """A client socket that counts the bytes the webhook code writes to it."""

    def sendall(self, data, *args):
        self.sent = getattr(self, "sent", 0) + len(data)
        return super().sendall(data, *args)


def loopback_seam(monkeypatch, port: int) -> list[tuple[str, int, CountingSocket]]:
    """The connect seam records the checked address it was asked for and connects to the receiver on
    loopback instead (a numeric address: no lookup)."""
    opened: list[tuple[str, int, CountingSocket]] = []

    def connect(address, port_asked, timeout):
        sock = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        opened.append((address, port_asked, sock))
        return sock

    monkeypatch.setattr(webhooks, "_connect", connect)
    return opened


def send(msg_id: str | None, url: str = URL) -> webhooks.HttpResult:
    headers = {"webhook-id": msg_id} if msg_id else {}
    return webhooks.post(url=url, body='{"n":"' + (msg_id or "-") + '"}', headers=headers)


def test_deliveries_to_one_endpoint_share_one_connection_and_each_is_checked_again(
    world, public_policy, monkeypatch, receiver, django_capture_on_commit_callbacks
):
    resolver = Resolver([PUBLIC])
    monkeypatch.setattr(webhooks, "_resolve", resolver)
    opened = loopback_seam(monkeypatch, receiver.port)
    endpoint = services.webhook_endpoint_create(org=world.org, url=URL, events=["snapshot.deprecated"])
    deliveries = []
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):  # deliver_webhook, eagerly
            deliveries.append(services.webhook_send_test(endpoint=endpoint))
    statuses = [WebhookDelivery.objects.get(pk=d.pk).status for d in deliveries]
    assert statuses == [DeliveryStatus.SUCCEEDED] * 5
    assert receiver.accepted == 1 and receiver.ids() == [[d.msg_id for d in deliveries]]
    assert [(address, port) for address, port, _ in opened] == [(PUBLIC, 80)]
    assert len(resolver.calls) == 1 + 5  # the registration's check, then one per delivery


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_delivery_arrives_once(
    world, public_policy, monkeypatch, receiver
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    endpoint = services.webhook_endpoint_create(org=world.org, url=URL, events=["snapshot.deprecated"])
    first = services.webhook_send_test(endpoint=endpoint)
    assert services.webhook_attempt(delivery_id=first.pk).status == DeliveryStatus.SUCCEEDED
    receiver.close_idle()  # the receiver's keep-alive timeout
    written = opened[0][2].sent
    second = services.webhook_send_test(endpoint=endpoint)
    delivered = services.webhook_attempt(delivery_id=second.pk)
    assert (delivered.status, delivered.attempts, delivered.response_status) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
    )
    assert receiver.ids() == [[first.msg_id], [second.msg_id]]
    assert len(opened) == 2 and opened[0][2].sent == written  # seen closed before anything was written


def test_a_close_not_yet_seen_when_the_request_went_out_is_retried_once_on_a_new_connection(
    world, public_policy, monkeypatch, receiver
):
    """The race the idle check cannot see: the server's close is still on its way when the request is
    written. Nothing comes back, not even a status line; the same request goes again, once."""
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    assert send("msg_1").status == 200
    receiver.close_idle()
    monkeypatch.setattr(webhooks, "_dropped", lambda connection: False)
    written_before = opened[0][2].sent
    result = send("msg_2")
    assert (result.status, result.error) == (200, "")
    assert opened[0][2].sent > written_before  # it was written on the closed connection first
    assert receiver.ids() == [["msg_1"], ["msg_2"]] and len(opened) == 2


def test_a_response_asking_to_close_is_not_reused(public_policy, monkeypatch, receiver):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    receiver.script = ["close"]
    assert [send("msg_1").status, send("msg_2").status, send("msg_3").status] == [200, 200, 200]
    assert receiver.ids() == [["msg_1"], ["msg_2", "msg_3"]]


def test_a_new_connection_that_gets_no_answer_is_not_sent_twice(public_policy, monkeypatch, receiver):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    receiver.script = ["hangup"]
    result = send("msg_1")
    assert (result.status, result.error) == (None, "could not connect")
    assert receiver.ids() == [["msg_1"]]  # left to the delivery's backoff, not repeated at once


def test_a_reused_connection_closed_after_reading_repeats_the_identical_request_for_the_receiver_to_dedupe(
    public_policy, monkeypatch, receiver
):
    """No status line came back: the request may or may not have been read. The copy on the new
    connection is byte for byte the same, `webhook-id` included, which is what receivers dedupe on."""
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    assert send("msg_1").status == 200
    receiver.script = ["hangup"]
    assert send("msg_2").status == 200
    assert receiver.ids() == [["msg_1", "msg_2"], ["msg_2"]]
    (first_copy_headers, first_copy_body), (second_copy_headers, second_copy_body) = (
        receiver.connections[0][1],
        receiver.connections[1][0],
    )
    assert first_copy_headers == second_copy_headers and first_copy_body == second_copy_body


def test_a_request_without_a_webhook_id_is_never_repeated(public_policy, monkeypatch, receiver):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    assert send(None).status == 200
    receiver.script = ["hangup"]
    assert (send(None).status, receiver.accepted) == (None, 1)
    assert receiver.ids() == [["-", "-"]]


def test_a_timeout_on_a_reused_connection_is_not_repeated(public_policy, settings, monkeypatch, receiver):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    assert send("msg_1").status == 200
    receiver.script = ["stall"]
    assert send("msg_2").error == "timed out"
    assert receiver.ids() == [["msg_1", "msg_2"]]


@pytest.mark.parametrize("answer", [["10.0.0.7"], [PUBLIC, "169.254.169.254"], ["::ffff:10.0.0.1"]])
def test_a_dns_change_to_a_non_public_address_is_refused_before_a_byte_goes_on_the_pooled_connection(
    public_policy, monkeypatch, receiver, answer
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC], answer, [PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    assert send("msg_1").status == 200
    pooled = opened[0][2]
    written = pooled.sent
    refused = send("msg_2")
    assert (refused.refused, refused.status, refused.error) == (True, None, webhooks.REFUSED)
    assert pooled.sent == written and len(opened) == 1  # nothing written, nothing opened
    assert send("msg_3").status == 200  # the public answer again: the same connection
    assert receiver.ids() == [["msg_1", "msg_3"]]


def test_a_dns_change_to_another_public_address_opens_a_connection_to_that_address(
    public_policy, monkeypatch, receiver
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC], [OTHER_PUBLIC], [PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    assert [send("msg_1").status, send("msg_2").status, send("msg_3").status] == [200, 200, 200]
    assert [(address, port) for address, port, _ in opened] == [(PUBLIC, 80), (OTHER_PUBLIC, 80)]
    assert receiver.ids() == [["msg_1", "msg_3"], ["msg_2"]]


def test_a_reordered_answer_reuses_the_connection_to_an_address_it_still_contains(
    public_policy, monkeypatch, receiver
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC, OTHER_PUBLIC], [OTHER_PUBLIC, PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    assert [send("msg_1").status, send("msg_2").status] == [200, 200]
    assert [(address, port) for address, port, _ in opened] == [(PUBLIC, 80)]
    assert receiver.ids() == [["msg_1", "msg_2"]]


def test_connections_are_kept_per_host_name_even_at_one_address(public_policy, monkeypatch, receiver):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    for url in (URL, "http://other.example.com/in", URL):
        assert send("msg", url=url).status == 200
    hosts = [[headers["host"] for headers, _ in requests] for requests in receiver.connections]
    assert hosts == [["hooks.example.com", "hooks.example.com"], ["other.example.com"]]


def test_https_reuses_one_tls_session_for_the_name_it_verified(
    public_policy, settings, monkeypatch, tmp_path
):
    settings.DEBUG = False
    cert, key = _certificate(tmp_path, "hooks.example.com")
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    tls_receiver = KeepAliveReceiver(context)
    trusting = ssl.create_default_context
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: trusting(cafile=str(cert)))
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    opened = loopback_seam(monkeypatch, tls_receiver.port)
    try:
        results = [send(f"msg_{n}", url="https://hooks.example.com/in").status for n in range(3)]
    finally:
        tls_receiver.stop()
    assert results == [200, 200, 200] and names == ["hooks.example.com"]
    assert tls_receiver.ids() == [["msg_0", "msg_1", "msg_2"]] and len(opened) == 1


@pytest.mark.parametrize(("answer", "reused"), [("chunked", True), ("big", False)])
def test_a_response_is_read_to_its_end_within_the_bound_before_the_connection_is_reused(
    public_policy, monkeypatch, receiver, answer, reused
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    receiver.script = [answer]
    assert [send("msg_1").status, send("msg_2").status] == [200, 200]
    assert receiver.accepted == (1 if reused else 2)


@pytest.mark.parametrize("setting", ["WEBHOOK_POOL_MAX_IDLE", "WEBHOOK_POOL_IDLE_SECONDS"])
def test_no_pool_or_no_idle_time_means_a_new_connection_per_delivery_and_the_old_one_closed(
    public_policy, settings, monkeypatch, receiver, setting
):
    setattr(settings, setting, 0)
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    assert [send(f"msg_{n}").status for n in range(3)] == [200, 200, 200]
    assert receiver.ids() == [["msg_0"], ["msg_1"], ["msg_2"]]
    assert [sock.fileno() for _, _, sock in opened[:2]] == [-1, -1]


def test_the_pool_closes_the_least_recently_used_connection_beyond_its_bound(
    public_policy, settings, monkeypatch, receiver
):
    settings.WEBHOOK_POOL_MAX_IDLE = 2
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    for host in ("a", "b", "a", "c"):
        assert send("msg", url=f"http://{host}.example.com/in").status == 200
    assert len(webhooks._POOL) == 2
    # a was used again after b, so b was the least recently used when c came
    assert [sock.fileno() == -1 for _, _, sock in opened] == [False, True, False]


def test_threads_never_share_a_connection(public_policy, monkeypatch, receiver):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    results: list[int | None] = []

    def deliver(worker: int) -> None:
        for n in range(10):
            results.append(send(f"msg_{worker}_{n}").status)

    threads = [threading.Thread(target=deliver, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 40
    assert 1 <= receiver.accepted <= 4
    # each connection saw whole requests one after another (a shared socket would garble them)
    assert sorted(i for ids in receiver.ids() for i in ids) == sorted(
        f"msg_{w}_{n}" for w in range(4) for n in range(10)
    )


def test_a_forked_worker_process_starts_with_an_empty_pool_and_the_parent_keeps_its_own(
    public_policy, monkeypatch, receiver
):
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    loopback_seam(monkeypatch, receiver.port)
    assert send("msg_1").status == 200 and len(webhooks._POOL) == 1
    pid = os.fork()
    if pid == 0:  # the child (as a Celery prefork child): exit at once, never into pytest
        os._exit(0 if len(webhooks._POOL) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert send("msg_2").status == 200
    assert receiver.ids() == [["msg_1", "msg_2"]]


def test_requests_are_not_held_back_by_nagle_on_a_kept_alive_connection(public_policy, monkeypatch, receiver):
    """http.client writes headers and body apart; its own connect() sets TCP_NODELAY, and so must the
    pinned connections (else each reused delivery waits for the receiver's delayed ACK)."""
    monkeypatch.setattr(webhooks, "_resolve", Resolver([PUBLIC]))
    opened = loopback_seam(monkeypatch, receiver.port)
    assert send("msg_1").status == 200
    assert opened[0][2].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.redis
@pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"),
    reason="needs a Redis broker and a real Celery worker: set CELERY_BROKER_URL=redis://… (CI services run)",
)
def test_a_prefork_worker_sends_successive_deliveries_to_one_endpoint_over_one_connection(
    workers,  # noqa: F811 -- the fixture imported above, not a redefinition
    receiver,
    settings,
):
    """`deliver_webhook` stays one task per delivery; the pool of the worker's child process is what
    carries one task's connection to the next."""
    from portal.celery import app
    from tests import factories as f
    from tests.notifications.test_worker_redis import queue_idle, wait_until

    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is 127.0.0.1 itself (the worker's env says so too)
    endpoint = services.webhook_endpoint_create(
        org=f.OrganizationFactory(slug="reuse"),
        url=f"http://127.0.0.1:{receiver.port}/hook",
        events=["snapshot.deprecated"],
    )
    workers.start("reuse", concurrency=1)
    app.conf.task_default_queue = workers.queue
    try:
        deliveries = [services.webhook_send_test(endpoint=endpoint) for _ in range(10)]
    finally:
        app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    succeeded = WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED)
    wait_until(
        lambda: succeeded.count() == 10 and queue_idle(workers.queue),
        timeout=120,
        what="the worker to deliver 10 webhooks",
        workers=workers,
    )
    assert receiver.accepted == 1
    assert sorted(receiver.ids()[0]) == sorted(d.msg_id for d in deliveries)
