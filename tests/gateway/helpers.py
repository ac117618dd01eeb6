"""Plain helpers for the gateway tests (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from vcp_gateway import Backoff

GATEWAY_KEY = "vcp_gw_test_key_0000000000000000"
FAST = Backoff(initial=0.01, maximum=0.05)
DAY = 86_400.0


def instant(days: float = 0.0, *, seconds: float = 0.0) -> str:
    """An ISO 8601 UTC instant relative to now, as the portal writes them."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(days=days, seconds=seconds)
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Wait (bounded) for `predicate()` to become truthy; returns its value, fails the test otherwise."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.005)


def verify_receipt(receipt: dict[str, Any], public_key_pem: str) -> bool:
    """The documented rule, written out independently of the library: Ed25519 over the canonical JSON
    (sorted keys, `,` and `:`, UTF-8, no ASCII escaping) of the six payload fields."""
    payload = {field: receipt[field] for field in ("v", "org", "alias", "snapshot", "response_id", "time")}
    message = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    public_key = serialization.load_pem_public_key(public_key_pem.encode())
    assert isinstance(public_key, Ed25519PublicKey)
    try:
        public_key.verify(base64.b64decode(receipt["signature"], validate=True), message)
    except InvalidSignature:
        return False
    return True


def sample_map() -> dict[str, dict[str, Any]]:
    """Snapshots in every lifecycle state, relative to now; four organisations.

    acme     pins v1-chat to a deprecated snapshot (manual)
    globex   pins v1-chat to a snapshot past retires_at, under extended support for 60 more days
    initech  pins v1-chat to a retired snapshot (no extension)
    umbrella is listed with no pins (alias defaults serve)
    """

    def snapshot(released, deprecated=None, retires=None, retention=None, successor=None, **urls):
        return {
            "family": "chat",
            "digest": "sha256:" + "0" * 64,
            "released_at": instant(released),
            "deprecated_at": None if deprecated is None else instant(deprecated),
            "retires_at": None if retires is None else instant(retires),
            "retention_until": None if retention is None else instant(retention),
            "successor": successor,
            "deprecation_url": urls.get("deprecation_url"),
            "successor_url": urls.get("successor_url"),
        }

    def pin(snapshot_name, policy="manual", extended_support_until=None):
        return {"snapshot": snapshot_name, "policy": policy, "extended_support_until": extended_support_until}

    return {
        "snapshots": {
            "chat-2024-01-01": snapshot(-800, -500, -400, -10, "chat-2026-03-02"),
            "chat-2024-06-01": snapshot(-500, -300, -30, 300, "chat-2026-03-02"),
            "chat-2025-09-29": snapshot(
                -400,
                -30,
                45,
                225,
                "chat-2026-03-02",
                deprecation_url="http://127.0.0.1:8000/snapshots/chat-2025-09-29/deprecation/",
                successor_url="http://127.0.0.1:8000/api/v1/snapshots/chat-2026-03-02/",
            ),
            "chat-2026-03-02": snapshot(-270),
            "chat-2027-01-01": snapshot(30),
        },
        "aliases": {
            "v1-chat": {"family": "chat", "default": "chat-2026-03-02"},
            "chat-preview": {"family": "chat", "default": "chat-2027-01-01"},
            "chat-legacy": {"family": "chat", "default": "chat-2024-01-01"},
        },
        "pins": {
            "acme": {"v1-chat": pin("chat-2025-09-29")},
            "globex": {"v1-chat": pin("chat-2024-06-01", "on-retirement", instant(60))},
            "initech": {"v1-chat": pin("chat-2024-06-01", "manual")},
            "umbrella": {},
        },
    }
