"""Standard Webhooks (https://www.standardwebhooks.com): signing with the `standardwebhooks` library,
address policy for endpoints, and the one HTTP seam deliveries go through."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import socket
import urllib.error
import urllib.request
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


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def validate_url(url: str) -> None:
    """Refuse (400, naming `url` and why) what is not https outside DEBUG, or resolves inside the network."""
    allow_private = getattr(settings, "WEBHOOKS_ALLOW_PRIVATE", False)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ApplicationError(
            f"The webhook URL is malformed: {exc}.", fields={"url": "malformed URL"}
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError(
            "The webhook URL must be an http(s) URL with a host.", fields={"url": "not an http(s) URL"}
        )
    if parts.scheme != "https" and not (settings.DEBUG or allow_private):
        raise ApplicationError("Webhook endpoints must use https.", fields={"url": "must use https"})
    if parts.username or parts.password:
        raise ApplicationError(
            "The webhook URL must not carry credentials.", fields={"url": "credentials in URL"}
        )
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(
            parts.hostname, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError, ValueError) as exc:
        raise ApplicationError(
            f"The webhook host {parts.hostname!r} does not resolve.", fields={"url": "host does not resolve"}
        ) from exc
    for info in infos:
        address = info[4][0]
        if _private(address):
            raise ApplicationError(
                f"The webhook host {parts.hostname!r} resolves to {address}, a private, loopback or link-local "
                "address; endpoints must be reachable on the public internet.",
                fields={"url": f"resolves to a non-public address ({address})"},
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could point inside the network after the address check: treat it as the answer."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class HttpResult:
    status: int | None
    error: str


def post(*, url: str, body: str, headers: dict[str, str]) -> HttpResult:
    """POST once; a 2xx is success. The address policy is checked again (DNS may have changed)."""
    try:
        validate_url(url)
    except ApplicationError as exc:
        return HttpResult(None, exc.message)
    request = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    timeout = getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return HttpResult(response.status, "")
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return HttpResult(None, str(getattr(exc, "reason", exc)))


def payload_json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
