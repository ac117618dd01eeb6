"""Error reporting: with SENTRY_DSN set, an unhandled error of a view reaches Sentry, without
cookies or request bodies. The "Sentry" here is an HTTP server on 127.0.0.1: nothing leaves the
machine."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from portal import observability

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentry_inbox():
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    observability.sentry_init(
        dsn=f"http://publickey@127.0.0.1:{server.server_address[1]}/42",
        environment="test",
        traces_sample_rate=0.0,
        _experiments={"transport_compression_level": 0},  # plain JSON envelopes the test can read
    )
    try:
        yield received
    finally:
        sentry_sdk.init()  # no DSN: reporting off again for the rest of the run
        server.shutdown()
        server.server_close()


def test_an_unhandled_view_error_is_reported_without_cookies(client, sentry_inbox, monkeypatch):
    def broken():
        raise RuntimeError("readiness exploded")

    monkeypatch.setattr("portal.views.operations.readiness", broken)
    client.raise_request_exception = False
    session = "cookie-" + uuid.uuid4().hex  # built at run time: the source lines Sentry quotes lack it
    client.cookies["sessionid"] = session
    response = client.get("/readyz")
    assert response.status_code == 500
    assert b"exploded" not in response.content  # the caller sees no stack trace or message
    sentry_sdk.flush(timeout=5)
    events = b"".join(sentry_inbox)
    assert b"readiness exploded" in events and b"RuntimeError" in events
    assert b'"environment":"test"' in events
    assert session.encode() not in events
