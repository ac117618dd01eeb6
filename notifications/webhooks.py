"""Standard Webhooks (https://www.standardwebhooks.com): signing with the `standardwebhooks` library,
address policy for endpoints, and the one HTTP seam deliveries go through."""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
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
    """A checked URL: where to connect (`address`, resolved once) and what to ask for (`host`, `path`)."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


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
    return Target(parts.scheme, parts.hostname, port, addresses[0], path)


def validate_url(url: str) -> None:
    """Refuse (400, naming `url` and why) what resolve() refuses."""
    resolve(url)


def _resolve(host: str, port: int) -> list[tuple]:
    """The one DNS lookup of a webhook URL (per check; the connection reuses its answer)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    """The one place a webhook opens a socket: to the address that was checked."""
    return socket.create_connection((address, port), timeout=timeout)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to the checked address; Host names the URL's host. No second DNS lookup."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = _connect(self._address, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address; SNI, certificate check and Host name the URL's host."""

    def __init__(self, target: Target, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = _connect(self._address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class HttpResult:
    status: int | None
    error: str
    refused: bool = False


def post(*, url: str, body: str, headers: dict[str, str]) -> HttpResult:
    """POST once to the address checked now (DNS may have changed since the endpoint was saved); a
    2xx is success. Redirects are not followed: they could point inside the network. A refused
    address is never connected to, and its result says only `refused`."""
    try:
        target = resolve(url)
    except Refused:
        return HttpResult(None, REFUSED, refused=True)
    except ApplicationError as exc:
        return HttpResult(None, exc.message)
    timeout = getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout=timeout)
    try:
        connection.request(
            "POST", target.path, body=body.encode(), headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        response.read(65536)
        status = response.status
    except ssl.SSLError:
        return HttpResult(None, "TLS handshake failed")
    except TimeoutError:
        return HttpResult(None, "timed out")
    except (OSError, http.client.HTTPException):
        return HttpResult(None, "could not connect")
    finally:
        connection.close()
    return HttpResult(status, "" if 200 <= status < 300 else f"HTTP {status}")


def payload_json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
