"""A small stand-in for the Stripe API on 127.0.0.1 (http.server in a thread), and Stripe's webhook
signature scheme, so billing tests run the real stripe client without the network.

The stand-in records every request (method, path, headers, form fields) and answers like Stripe for
the few endpoints billing uses, including Stripe's idempotency: a POST repeating an Idempotency-Key
gets the first answer back.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_test_standin"


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Stripe-Signature as Stripe documents it: t=<ts>,v1=<hex HMAC-SHA256 of '<ts>.<payload>'>."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None) -> str:
    """A Stripe event body (JSON text) around `obj`."""
    return json.dumps(
        {
            "id": event_id
            or f"evt_{abs(hash((event_type, json.dumps(obj, sort_keys=True), time.time_ns())))}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    )


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class StripeStandIn:
    requests: list[Recorded] = field(default_factory=list)
    checkout_sessions: dict[str, dict] = field(default_factory=dict)
    subscriptions: dict[str, dict] = field(default_factory=dict)
    prices: dict[str, dict] = field(default_factory=dict)
    fail_with: int | None = None  # answer every API call with this status (an error body)
    _idempotent: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def start(self) -> StripeStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict | str, content_type: str = "application/json") -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                parts = urlsplit(self.path)
                form = dict(parse_qsl(raw or parts.query, keep_blank_values=True))
                if not parts.path.startswith("/v1/"):
                    return self._answer(
                        200,
                        f"<!doctype html><title>Stand-in Checkout</title><h1>Stand-in {parts.path}</h1>",
                        "text/html",
                    )
                standin.requests.append(Recorded(method, parts.path, dict(self.headers.items()), form))
                key = self.headers.get("Idempotency-Key")
                if method == "POST" and key and key in standin._idempotent:
                    return self._answer(*standin._idempotent[key])
                status, body = standin.route(method, parts.path, form)
                if method == "POST" and key:
                    standin._idempotent[key] = (status, body)
                self._answer(status, body)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict]:
        if self.fail_with:
            return self.fail_with, {"error": {"type": "invalid_request_error", "message": "stand-in refuses"}}
        n = next(self._ids)
        if method == "POST" and path == "/v1/customers":
            return 200, {"id": f"cus_test_{n}", "object": "customer", "name": form.get("name")}
        if method == "POST" and path == "/v1/checkout/sessions":
            session_id = f"cs_test_{n}"
            metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
            session = {
                "id": session_id,
                "object": "checkout.session",
                "url": f"{self.url}/pay/{session_id}",
                "status": "open",
                "payment_status": "unpaid",
                "mode": form.get("mode"),
                "customer": form.get("customer"),
                "subscription": None,
                "metadata": metadata,
            }
            self.checkout_sessions[session_id] = session
            return 200, session
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return 200, {
                "id": f"bps_test_{n}",
                "object": "billing_portal.session",
                "url": f"{self.url}/portal/{n}",
            }
        if method == "GET" and path.startswith("/v1/prices/"):
            price_id = path.rsplit("/", 1)[1]
            found = self.prices.get(price_id)
            return (200, {"id": price_id, "object": "price", **found}) if found else self.missing(path)
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            found = self.checkout_sessions.get(path.rsplit("/", 1)[1])
            return (200, found) if found else self.missing(path)
        if method == "GET" and path.startswith("/v1/subscriptions/"):
            found = self.subscriptions.get(path.rsplit("/", 1)[1])
            return (200, found) if found else self.missing(path)
        return self.missing(path)

    @staticmethod
    def missing(path: str) -> tuple[int, dict]:
        return 404, {
            "error": {"type": "invalid_request_error", "code": "resource_missing", "message": f"No {path}"}
        }

    def posts(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    def complete(self, session_id: str, *, subscription: str | None = None, paid: bool = True) -> dict:
        """Stripe's side of a finished Checkout: the session is complete (and paid)."""
        session = self.checkout_sessions[session_id]
        session.update(
            status="complete", payment_status="paid" if paid else "unpaid", subscription=subscription
        )
        return session


def subscription(
    sub_id: str,
    *,
    status: str = "active",
    customer: str = "cus_test_1",
    metadata: dict | None = None,
    price: str = "price_test",
    price_metadata: dict | None = None,
    period_end: int | None = None,
) -> dict:
    period_end = period_end or int(time.time()) + 30 * 86400
    return {
        "id": sub_id,
        "object": "subscription",
        "status": status,
        "customer": customer,
        "metadata": metadata or {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub_id}",
                    "object": "subscription_item",
                    "current_period_end": period_end,
                    "price": {"id": price, "object": "price", "metadata": price_metadata or {}},
                }
            ],
        },
    }


def running(settings):
    """Generator for a fixture: the stand-in started and billing settings pointed at it."""
    standin = StripeStandIn().start()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = standin.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0  # a 5xx from the stand-in fails at once (Celery retries)
    try:
        yield standin
    finally:
        standin.stop()
