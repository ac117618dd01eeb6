"""Standard Webhooks (https://www.standardwebhooks.com): signing with the `standardwebhooks` library,
address policy for endpoints, and the one HTTP seam deliveries go through, which keeps connections
alive between deliveries (a per-process pool keyed by the checked address, see `post()`)."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import os
import secrets
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from standardwebhooks import Webhook

from contracts.errors import ApplicationError

SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature_header(*, secrets_in_use: list[str], msg_id: str, timestamp: dt.datetime, body: str) -> str:
    """`webhook-signature`: one `v1,<sig>` per active secret (two while a rotated secret is still honoured)."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets_in_use)


# Addresses that ipaddress's is_global lets through but that are not one host on the public internet:
# IPv4 protocol assignments and the old 6to4 relay anycast, and IPv6 prefixes that embed or translate
# to an IPv4 address (6to4, NAT64, IPv4-compatible and -mapped, which would reach private IPv4
# space through a relay or the host's own stack), plus deprecated site-local, documentation and
# SRv6 space. Multicast is refused separately (is_global is true for global-scope multicast).
NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in (
        "192.0.0.0/24",
        "192.88.99.0/24",
        "::/96",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "fec0::/10",
        "3fff::/20",
        "5f00::/16",
    )
)
REFUSED = "refused: the endpoint's address is not publicly routable"


def address_allowed(address: str) -> bool:
    """Only globally routable unicast addresses (see NOT_PUBLIC for what is_global gets wrong)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    return not any(ip.version == network.version and ip in network for network in NOT_PUBLIC)


class Refused(ApplicationError):
    code = "refused"


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`, resolved once) and what to ask for (`host`, `path`).
    `addresses` is the whole answer of that lookup, every one of them checked: a kept-alive connection
    to any of them may carry the request (a round-robin answer changes its order, not its safety)."""

    scheme: str
    host: str
    port: int
    address: str
    path: str
    addresses: tuple[str, ...] = ()

    def keys(self) -> set[tuple[str, str, int, str]]:
        """The pool keys a connection for this target may be taken under."""
        return {(self.scheme, self.host, self.port, address) for address in self.addresses or (self.address,)}


def _demo_receiver(address: str, port: int) -> bool:
    """The embedded demo delivers to its own receiver (make run starts it on 127.0.0.1, port
    DEMO_WEBHOOK_PORT): that loopback port only, and only with DEBUG on. Any other loopback or
    private address still needs WEBHOOKS_ALLOW_PRIVATE."""
    if not settings.DEBUG or port != getattr(settings, "DEMO_WEBHOOK_PORT", None):
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False))


def resolve(url: str) -> Target:
    """Check the URL and resolve its host once. Refused (400, naming `url`) when it is not https
    outside DEBUG, carries credentials, does not resolve, or any of its addresses is not publicly
    routable (unless WEBHOOKS_ALLOW_PRIVATE). The message says no more than that: it must not tell
    a caller what lives at an internal address."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ApplicationError("The webhook URL is malformed.", fields={"url": "malformed URL"}) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError(
            "The webhook URL must be an http(s) URL with a host.", fields={"url": "not an http(s) URL"}
        )
    if parts.scheme != "https" and not (settings.DEBUG or _allow_private()):
        raise ApplicationError("Webhook endpoints must use https.", fields={"url": "must use https"})
    if parts.username or parts.password:
        raise ApplicationError(
            "The webhook URL must not carry credentials.", fields={"url": "credentials in URL"}
        )
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = _resolve(parts.hostname, port)
    except (OSError, UnicodeError, ValueError) as exc:
        raise ApplicationError(
            "The webhook host does not resolve.", fields={"url": "host does not resolve"}
        ) from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise ApplicationError("The webhook host does not resolve.", fields={"url": "host does not resolve"})
    if not _allow_private() and not all(
        address_allowed(address) or _demo_receiver(address, port) for address in addresses
    ):
        raise Refused(
            "The webhook host resolves to an address that is not publicly routable; endpoints must be "
            "reachable on the public internet.",
            fields={"url": "resolves to a non-public address"},
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port, addresses[0], path, tuple(dict.fromkeys(addresses)))


def validate_url(url: str) -> None:
    """Refuse (400, naming `url` and why) what resolve() refuses."""
    resolve(url)


def _resolve(host: str, port: int) -> list[tuple]:
    """The one DNS lookup of a webhook URL (per check; the connection reuses its answer)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    """The one place a webhook opens a socket: to the address that was checked."""
    return socket.create_connection((address, port), timeout=timeout)


def _no_delay(sock: socket.socket) -> socket.socket:
    """http.client writes the headers and the body separately: without TCP_NODELAY (which its own
    connect() sets) the body waits for the receiver's delayed ACK, 40 ms on every reused connection."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the checked address; Host names the URL's host. No second DNS lookup. It never opens
    itself again (`auto_open` off): once closed it stays closed, and only `post()` connects."""

    auto_open = 0

    def __init__(self, target: Target, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address
        self.key = (target.scheme, target.host, target.port, target.address)

    def connect(self) -> None:
        self.sock = _no_delay(_connect(self._address, self.port, self.timeout))


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address; SNI, certificate check and Host name the URL's host."""

    auto_open = 0

    def __init__(self, target: Target, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address
        self.key = (target.scheme, target.host, target.port, target.address)

    def connect(self) -> None:
        sock = _no_delay(_connect(self._address, self.port, self.timeout))
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


Connection = _PinnedHTTPConnection | _PinnedHTTPSConnection


class _Pool:
    """This process's idle keep-alive connections, keyed by (scheme, host, port, checked address),
    oldest first. A connection is in the pool only while idle: `take()` hands it to one caller alone,
    so threads never share a socket. Bounded (WEBHOOK_POOL_MAX_IDLE, the least recently used closed
    first) and aged (WEBHOOK_POOL_IDLE_SECONDS); a forked child closes its copies and starts empty."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[float, Connection]] = []

    def take(self, target: Target, *, idle_seconds: float) -> Connection | None:
        """The most recently used idle connection to one of `target`'s checked addresses, if any."""
        keys, now, found, expired = target.keys(), time.monotonic(), None, []
        with self._lock:
            while self._idle and now - self._idle[0][0] >= idle_seconds:
                expired.append(self._idle.pop(0)[1])
            for index in range(len(self._idle) - 1, -1, -1):
                if self._idle[index][1].key in keys:
                    found = self._idle.pop(index)[1]
                    break
        for connection in expired:
            connection.close()
        return found

    def give(self, connection: Connection, *, max_idle: int) -> None:
        evicted = []
        with self._lock:
            self._idle.append((time.monotonic(), connection))
            while len(self._idle) > max(max_idle, 0):
                evicted.append(self._idle.pop(0)[1])
        for stale in evicted:
            stale.close()

    def __len__(self) -> int:
        return len(self._idle)

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()

    def _after_fork(self) -> None:
        # The parent keeps using these sockets: the child only drops its descriptors (close() sends
        # nothing, and TLS state is not touched), with a lock no other thread of the parent holds.
        self._lock = threading.Lock()
        idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL._after_fork)


def pool_clear() -> None:
    """Close every idle connection of this process (tests; a worker that wants a clean slate)."""
    _POOL.clear()


def _dropped(connection: Connection) -> bool:
    """An idle connection is usable only if nothing is waiting to be read on it: a readable socket
    means the server closed it (FIN or TLS close_notify) or sent something no request asked for."""
    sock = connection.sock
    if sock is None:
        return True
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


RESPONSE_LIMIT = 65536
# The header a receiver deduplicates on (Standard Webhooks' `webhook-id`, the same on every attempt of
# a delivery). Only a request carrying it is ever sent twice by one attempt; see `post()`.
IDEMPOTENCY_HEADER = "webhook-id"
# A reused connection failing this way, before any byte of a response arrived, is a connection the
# server closed while it was idle (keep-alive expiry): the request goes again on a new connection.
_CLOSED_WHILE_IDLE = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class _ServerClosed(Exception):
    """A reused connection turned out to be closed by the server before it answered."""


@dataclass
class HttpResult:
    status: int | None
    error: str
    refused: bool = False


def _exchange(
    connection: Connection,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    reused: bool,
    max_idle: int,
) -> HttpResult:
    """One request on one connection; the connection goes back to the pool only after a complete
    exchange whose response was read to its end (at most RESPONSE_LIMIT bytes) and did not ask to close."""
    keep = False
    try:
        try:
            if connection.sock is None:
                connection.connect()
            connection.request("POST", target.path, body=body, headers=headers)
            response = connection.getresponse()
        except _CLOSED_WHILE_IDLE as exc:
            if reused:
                raise _ServerClosed from exc
            raise
        status = response.status
        try:
            response.read(RESPONSE_LIMIT)
            # http.client closes the connection itself when the response says `Connection: close`.
            keep = response.isclosed() and not response.will_close and connection.sock is not None
        except (OSError, http.client.HTTPException):
            pass  # the status arrived: the request was taken; only the connection is lost
    except ssl.SSLError:
        return HttpResult(None, "TLS handshake failed")
    except TimeoutError:
        return HttpResult(None, "timed out")
    except (OSError, http.client.HTTPException):
        return HttpResult(None, "could not connect")
    finally:
        if keep and max_idle > 0:
            _POOL.give(connection, max_idle=max_idle)
        else:
            connection.close()
    return HttpResult(status, "" if 200 <= status < 300 else f"HTTP {status}")


def post(*, url: str, body: str, headers: dict[str, str]) -> HttpResult:
    """POST once to the address checked now (DNS may have changed since the endpoint was saved); a
    2xx is success. Redirects are not followed: they could point inside the network. A refused
    address is never connected to, and its result says only `refused`.

    Connections are kept alive: after the check, an idle pooled connection is reused only if it goes
    to an address this very lookup returned and checked (same scheme, host and port); otherwise a new
    one opens to the checked address. A reused connection that the server had closed while idle
    (nothing came back, not even a status line) is replaced once by a new connection, and the same
    request, byte for byte with its `webhook-id`, goes again: the receiver either never read the first
    copy or can drop it as a duplicate. A request without that header is not sent twice. A timeout or
    a response of any kind is never followed by a second copy."""
    try:
        target = resolve(url)
    except Refused:
        return HttpResult(None, REFUSED, refused=True)
    except ApplicationError as exc:
        return HttpResult(None, exc.message)
    timeout = getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10)
    max_idle = settings.WEBHOOK_POOL_MAX_IDLE
    idle_seconds = settings.WEBHOOK_POOL_IDLE_SECONDS
    payload = body.encode()
    all_headers = {"Content-Type": "application/json", **headers}
    replayable = any(name.lower() == IDEMPOTENCY_HEADER for name in headers)
    while (connection := _POOL.take(target, idle_seconds=idle_seconds)) is not None:
        if _dropped(connection):
            connection.close()
            continue
        connection.timeout = timeout
        connection.sock.settimeout(timeout)
        try:
            return _exchange(connection, target, payload, all_headers, reused=True, max_idle=max_idle)
        except _ServerClosed:
            if not replayable:
                return HttpResult(None, "could not connect")
            break
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    return _exchange(
        connection_class(target, timeout=timeout),
        target,
        payload,
        all_headers,
        reused=False,
        max_idle=max_idle,
    )


def payload_json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
