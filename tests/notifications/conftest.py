"""Fixtures of the notification tests: a real SMTP sink (aiosmtpd) and a local webhook receiver."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """Collects every message an aiosmtpd server on 127.0.0.1 receives."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_sink):
    sink, port = smtp_sink
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    return sink


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.script: list[int] = []  # answers for the next requests, then `status`


@pytest.fixture
def webhook_receiver(settings):
    """An HTTP server on 127.0.0.1 recording each POST; `receiver.status` sets the answer."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(receiver.script.pop(0) if receiver.script else receiver.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def deprecate(snapshot, *, deprecated_at, retires_at=None, replacement=None):
    """Set a snapshot's lifecycle dates (the staff scheduling service is another engineer's area)."""
    from contracts.models import Snapshot

    Snapshot.objects.filter(pk=snapshot.pk).update(
        deprecated_at=deprecated_at, retires_at=retires_at, replacement=replacement
    )
    snapshot.refresh_from_db()
    return snapshot


def accept_terms(org, *, min_notice_days=90, ack_escalation_days=7, version=None):
    from django.utils import timezone

    from contracts.models import ContractTerms

    body = f"terms {version or min_notice_days}-{ack_escalation_days}"
    terms = ContractTerms.objects.create(
        version=version or f"t{min_notice_days}-{ack_escalation_days}-{org.slug}",
        title="Terms",
        body=body,
        body_sha256=ContractTerms.hash_body(body),
        effective_at=timezone.now(),
        min_notice_days=min_notice_days,
        ack_escalation_days=ack_escalation_days,
        retired_bug_policy="kept",
    )
    org.accepted_terms = terms
    org.accepted_terms_at = timezone.now()
    org.save(update_fields=["accepted_terms", "accepted_terms_at"])
    return terms
