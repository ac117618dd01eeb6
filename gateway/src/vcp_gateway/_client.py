"""A small HTTP client for the portal's gateway endpoints, and the retry policy the library uses.

Built on `http.client` rather than `urllib.request` for one reason: a background long-poll must be
interruptible. Every request made with a `cancel` event registers its socket, and `abort(cancel)`
shuts those sockets down, which wakes the blocked read at once instead of after `wait` seconds.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import version
from typing import Any
from urllib.parse import urlencode, urlsplit

from vcp_gateway.errors import PortalRefused, PortalUnavailable, ProtocolError

USER_AGENT = f"vcp-gateway/{version('vcp-gateway')}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: the wait before retry n (0-based) after n+1 failures in a row.

    The ceiling doubles from `initial` up to `maximum`; the wait is drawn between half the ceiling and
    the ceiling ("equal jitter"), so gateways that lost the portal together do not come back in step
    while each still backs off at least exponentially.
    """

    initial: float = 0.5
    maximum: float = 60.0
    multiplier: float = 2.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.maximum, self.initial * self.multiplier ** min(failures, 64))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Message
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ProtocolError(f"answer {self.status} is not JSON: {exc}") from exc

    def error(self) -> PortalUnavailable | PortalRefused:
        """The exception for a non-2xx answer, with the portal's error envelope when it sent one."""
        if self.status >= 500:
            return PortalUnavailable(f"portal answered {self.status}")
        try:
            envelope = json.loads(self.body)["error"]
            code, message = str(envelope.get("code", "")), str(envelope.get("message", ""))
            fields = envelope.get("fields") if isinstance(envelope.get("fields"), dict) else {}
        except (ValueError, TypeError, KeyError, AttributeError):
            code, message, fields = "", self.body[:200].decode(errors="replace"), {}
        return PortalRefused(self.status, code or f"http_{self.status}", message, fields)


class PortalClient:
    """JSON requests to one portal with one gateway key. Thread-safe; one connection per request."""

    def __init__(self, base_url: str, key: str, *, timeout: float = 10.0):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"portal URL must be http(s)://host[:port][/prefix], not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._key = key
        self.timeout = timeout
        self._lock = threading.Lock()
        self._cancellable: dict[socket.socket, threading.Event] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        payload: object = None,
        headers: dict[str, str] | None = None,
        read_timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> Response:
        """One request; any status comes back as a Response, network failures raise PortalUnavailable.

        `read_timeout` (default: the client's timeout) bounds the wait for the answer, e.g. a
        long-poll's `wait` plus slack; connecting is always bounded by the client's timeout.
        """
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        head = {
            "Authorization": f"Bearer {self._key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        body = None
        if payload is not None:
            body = json.dumps(payload, separators=(",", ":")).encode()
            head["Content-Type"] = "application/json"
        head.update(headers or {})
        connection = self._connection()
        sock = None
        try:
            connection.connect()
            sock = connection.sock
            sock.settimeout(read_timeout or self.timeout)
            self._register(sock, cancel)
            connection.request(method, target, body=body, headers=head)
            answer = connection.getresponse()
            return Response(answer.status, answer.headers, answer.read())
        except (OSError, http.client.HTTPException) as exc:
            raise PortalUnavailable(f"{method} {path}: {exc or type(exc).__name__}") from exc
        finally:
            if sock is not None:
                with self._lock:
                    self._cancellable.pop(sock, None)
            connection.close()

    def abort(self, cancel: threading.Event) -> None:
        """Interrupt the requests made with this (already set) event: they raise PortalUnavailable."""
        with self._lock:
            for sock, event in self._cancellable.items():
                if event is cancel:
                    with contextlib.suppress(OSError):  # already closed by its own thread
                        sock.shutdown(socket.SHUT_RDWR)

    def _register(self, sock: socket.socket, cancel: threading.Event | None) -> None:
        # Checked under the lock abort() takes, so an abort can never slip between the check and the
        # registration and leave a request blocked for a whole long-poll.
        if cancel is None:
            return
        with self._lock:
            if cancel.is_set():
                raise PortalUnavailable("cancelled")
            self._cancellable[sock] = cancel

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
