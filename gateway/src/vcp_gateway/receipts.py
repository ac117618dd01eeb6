"""Output receipts signed with the gateway's own Ed25519 key (format: docs/data-plane.md, "Receipts").

    signer = ReceiptSigner.from_file("/etc/vcp-gateway/receipt-key.pem")
    signer.register(portal_url, gateway_key)   # at start-up; registering the same key again is fine
    receipt = signer.sign(org="acme", alias="v1-chat", snapshot=resolution.snapshot, response_id=rid)

The portal verifies these receipts (`POST /api/v1/receipts/verify/`, bug reports) with the registered
public key, exactly as it verifies its own.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vcp_gateway._client import PortalClient

RECEIPT_VERSION = 1
RECEIPT_KEYS_PATH = "/api/v1/gateway/receipt-keys/"


def canonical_json(payload: Mapping[str, object]) -> bytes:
    """The signed bytes: keys sorted, separators `,` and `:`, UTF-8, no ASCII escaping."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """`gw-` and the first 16 hex digits of the sha256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "gw-" + hashlib.sha256(raw).hexdigest()[:16]


class ReceiptSigner:
    """The gateway's receipt key: signs receipts, and registers its public half with the portal."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._private_key = private_key
        public_key = private_key.public_key()
        self.key_id = key_id_of(public_key)
        self.public_key_pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @classmethod
    def generate(cls) -> ReceiptSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ReceiptSigner:
        """Load a PEM private key (PKCS8, unencrypted), as `python -m vcp_gateway keygen` writes it."""
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
        return cls(key)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the private key as PKCS8 PEM, readable by its owner only (0600).

        Raises FileExistsError when `path` exists, unless `overwrite`. Either way the file appears
        whole or not at all (written to a temporary file first).
        """
        path = Path(path)
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
                file.flush()
                os.fsync(file.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # atomic, and refuses an existing path
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def sign(
        self, *, org: str, alias: str, snapshot: str, response_id: str, at: dt.datetime | None = None
    ) -> dict[str, Any]:
        """A receipt for one response, ready to embed in it as JSON. `at` defaults to now (aware UTC)."""
        if "\x00" in response_id:
            raise ValueError("a response id cannot contain NUL characters")
        at = at or dt.datetime.now(dt.UTC)
        if at.tzinfo is None:
            raise ValueError("a receipt time must be time-zone aware")
        payload = {
            "v": RECEIPT_VERSION,
            "org": org,
            "alias": alias,
            "snapshot": snapshot,
            "response_id": response_id,
            "time": at.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
        signature = self._private_key.sign(canonical_json(payload))
        return {**payload, "key_id": self.key_id, "signature": base64.b64encode(signature).decode()}

    def register(self, base_url: str, key: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Register the public key with the portal; returns its answer (201 new, 200 already known).

        Raises `PortalUnavailable` (retry later), `PortalRefused` (409: this key id is registered with
        another key; 403: not a gateway key) or `ProtocolError`.
        """
        client = PortalClient(base_url, key, timeout=timeout)
        payload = {"key_id": self.key_id, "public_key": self.public_key_pem}
        response = client.request("POST", RECEIPT_KEYS_PATH, payload=payload)
        if not response.ok:
            raise response.error()
        return response.json()
