"""vcp_gateway: the data plane of the Version Contract Portal (protocol: docs/data-plane.md).

- `PinMap` keeps a local copy of the portal's pin map current and resolves (organisation, alias)
  to the snapshot that serves it, from memory.
- `ReceiptSigner` signs output receipts with the gateway's own Ed25519 key.
- `UsageReporter` counts served requests per hour and reports them in idempotent batches.

Needs only the standard library and `cryptography`; never imports Django.
"""

from importlib.metadata import version

from vcp_gateway._client import Backoff
from vcp_gateway.errors import (
    GatewayError,
    MissingSnapshot,
    PinMapNotReady,
    PortalRefused,
    PortalUnavailable,
    ProtocolError,
    ResolveError,
    UnknownAlias,
)
from vcp_gateway.pinmap import PinMap, Resolution
from vcp_gateway.receipts import ReceiptSigner, canonical_json
from vcp_gateway.usage import UsageReporter

__version__ = version("vcp-gateway")

__all__ = [
    "Backoff",
    "GatewayError",
    "MissingSnapshot",
    "PinMap",
    "PinMapNotReady",
    "PortalRefused",
    "PortalUnavailable",
    "ProtocolError",
    "ReceiptSigner",
    "Resolution",
    "ResolveError",
    "UnknownAlias",
    "UsageReporter",
    "canonical_json",
]
