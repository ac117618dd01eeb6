"""Fixtures for the gateway library: a fake portal speaking the data-plane protocol on 127.0.0.1.

No database: these tests run with or without pytest-django (`-p no:django --confcutdir tests/gateway`).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from vcp_gateway import PinMap, UsageReporter

from tests.gateway.helpers import FAST, GATEWAY_KEY, sample_map

PIN_MAP = "/api/v1/gateway/pin-map/"
RECEIPT_KEYS = "/api/v1/gateway/receipt-keys/"
USAGE = "/api/v1/gateway/usage/"


@dataclass
class Exchange:
    """One request the fake portal received, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0


class FakePortal:
    """The portal side of docs/data-plane.md, in memory: pin map with change log, receipt keys, usage.

    Tests change the map with `change()`, make the change log forget with `forget_changes()`, queue
    canned answers with `script(path, status, body)`, and stop or restart the server (same port).
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.revision = 1
        self.map = sample_map()
        self.log: list[
            tuple[int, str, str | None, str, dict | None]
        ] = []  # revision, section, org, name, value
        self.oldest_since = 1
        self.exchanges: list[Exchange] = []
        self.receipt_keys: dict[str, str] = {}
        self.usage_batches: dict[str, dict] = {}
        self.scripted: dict[str, list[tuple[int, Any]]] = {}
        self.closing = False
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.closing = False
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-portal", daemon=True
        ).start()

    def stop(self) -> None:
        with self.changed:
            self.closing = True  # ends held long-polls
            self.changed.notify_all()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- test controls -------------------------------------------------------------------------

    def change(self, section: str, name: str, value: dict | None, *, org: str | None = None) -> int:
        """Set (or, with None, delete) one entry; a pin when `org` is given. Returns the new revision."""
        with self.changed:
            self.revision += 1
            entries = self.map["pins"].setdefault(org, {}) if section == "pins" else self.map[section]
            if value is None:
                entries.pop(name, None)
            else:
                entries[name] = value
            self.log.append((self.revision, section, org, name, copy.deepcopy(value)))
            self.changed.notify_all()
            return self.revision

    def forget_changes(self) -> None:
        """Drop the change log: deltas since an older revision now answer 410."""
        with self.changed:
            self.oldest_since = self.revision

    def script(self, path: str, status: int, body: Any = None) -> None:
        """Answer the next request to `path` with this status and body instead of the real thing."""
        self.scripted.setdefault(path, []).append((status, body))

    def requests_to(self, path: str, method: str = "GET") -> list[Exchange]:
        return [
            exchange
            for exchange in list(self.exchanges)
            if exchange.path == path and exchange.method == method
        ]

    # -- protocol ------------------------------------------------------------------------------

    def pin_map(self, query: dict[str, str], if_none_match: str | None) -> tuple[int, Any, dict[str, str]]:
        with self.changed:
            if "since" not in query:
                body = {
                    "version": 1,
                    "revision": self.revision,
                    "full": True,
                    "generated_at": _now(),
                    **self.map,
                }
            else:
                try:
                    since, wait = int(query["since"]), int(query.get("wait", "0"))
                except ValueError:
                    return _error(400, "invalid", "since and wait are integers")
                if since > self.revision or not 0 <= wait <= 60:
                    return _error(400, "invalid", "since is ahead of the portal, or wait is over 60")
                if since < self.oldest_since:
                    return _error(410, "revision_gone", "the change log no longer reaches back that far")
                if wait:
                    self.changed.wait_for(lambda: self.revision > since or self.closing, timeout=wait)
                body = self._delta(since)
            body = copy.deepcopy(body)
        etag = f'"{body["revision"]}"'
        if if_none_match == etag:
            return 304, None, {"ETag": etag}
        return 200, body, {"ETag": etag}

    def _delta(self, since: int) -> dict[str, Any]:
        delta: dict[str, Any] = {"snapshots": {}, "aliases": {}, "pins": {}}
        for revision, section, org, name, value in self.log:
            if revision > since:
                entries = delta["pins"].setdefault(org, {}) if section == "pins" else delta[section]
                entries[name] = value
        return {
            "version": 1,
            "revision": self.revision,
            "full": False,
            "since": since,
            "generated_at": _now(),
            **delta,
        }

    def register_key(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        key_id, pem = body.get("key_id"), body.get("public_key")
        public_key = serialization.load_pem_public_key(pem.encode())
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if key_id != "gw-" + hashlib.sha256(raw).hexdigest()[:16]:
            return _error(400, "invalid", "key_id does not match the public key", {"key_id": "mismatch"})
        known = self.receipt_keys.get(key_id)
        if known is not None and known != pem:
            return _error(409, "conflict", "this key id is registered with another key")
        self.receipt_keys[key_id] = pem
        answer = {"key_id": key_id, "gateway": "test-gateway", "created_at": _now(), "revoked_at": None}
        return (200 if known else 201), answer, {}

    def record_usage(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        batch_id = body.get("batch_id")
        if batch_id in self.usage_batches:
            return 200, {"batch_id": batch_id, "rows": len(body["rows"]), "duplicate": True}, {}
        with self.changed:
            orgs, aliases, snapshots = self.map["pins"], self.map["aliases"], self.map["snapshots"]
        for index, row in enumerate(body["rows"]):
            for field, known in (("org", orgs), ("alias", aliases), ("snapshot", snapshots)):
                if row[field] not in known:
                    return _error(400, "invalid", f"unknown {field}", {f"rows[{index}].{field}": "unknown"})
        self.usage_batches[batch_id] = body
        return 200, {"batch_id": batch_id, "rows": len(body["rows"]), "duplicate": False}, {}

    def usage_rows(self) -> list[dict[str, Any]]:
        return [row for batch in self.usage_batches.values() for row in batch["rows"]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], portal: FakePortal):
        super().__init__(address, _Handler)
        self.portal = portal


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        portal = self.server.portal
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        exchange = Exchange(
            method, url.path, dict(parse_qsl(url.query)), dict(self.headers), json.loads(raw) if raw else None
        )
        portal.exchanges.append(exchange)
        if self.headers.get("Authorization") != f"Bearer {GATEWAY_KEY}":
            status, body, headers = _error(403, "forbidden", "not a gateway key")
        elif portal.scripted.get(url.path):
            status, body = portal.scripted[url.path].pop(0)
            headers = {}
        elif (method, url.path) == ("GET", PIN_MAP):
            status, body, headers = portal.pin_map(exchange.query, self.headers.get("If-None-Match"))
        elif (method, url.path) == ("POST", RECEIPT_KEYS):
            status, body, headers = portal.register_key(exchange.body)
        elif (method, url.path) == ("POST", USAGE):
            status, body, headers = portal.record_usage(exchange.body)
        else:
            status, body, headers = _error(404, "not_found", url.path)
        exchange.status = status
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the gateway hung up (an interrupted long-poll)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(
    status: int, code: str, message: str, fields: dict | None = None
) -> tuple[int, Any, dict[str, str]]:
    return status, {"error": {"code": code, "message": message, "fields": fields or {}}}, {}


@pytest.fixture
def portal() -> Iterator[FakePortal]:
    fake = FakePortal()
    yield fake
    fake.stop()


@pytest.fixture
def make_pin_map(portal: FakePortal) -> Iterator[Callable[..., PinMap]]:
    """PinMap factory for the fake portal (fast backoff); every map made is stopped afterwards."""
    made: list[PinMap] = []

    def make(**options: Any) -> PinMap:
        pin_map = PinMap(portal.url, GATEWAY_KEY, **{"backoff": FAST, "timeout": 5.0, **options})
        made.append(pin_map)
        return pin_map

    yield make
    for pin_map in made:
        pin_map.stop()


@pytest.fixture
def synced(make_pin_map: Callable[..., PinMap]) -> PinMap:
    """A PinMap holding the sample map."""
    pin_map = make_pin_map()
    pin_map.sync()
    return pin_map


@pytest.fixture
def make_reporter(portal: FakePortal) -> Iterator[Callable[..., UsageReporter]]:
    made: list[UsageReporter] = []

    def make(**options: Any) -> UsageReporter:
        reporter = UsageReporter(portal.url, GATEWAY_KEY, **{"backoff": FAST, "timeout": 5.0, **options})
        made.append(reporter)
        return reporter

    yield make
    for reporter in made:
        reporter.stop()
