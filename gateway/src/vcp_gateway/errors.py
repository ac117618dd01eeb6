"""Exceptions of the gateway library.

Two families: `GatewayError` for talking to the portal (sync, registration, usage), and
`ResolveError` (a `LookupError`) for local resolution, which never talks to anybody.
"""

from __future__ import annotations

from collections.abc import Mapping


class GatewayError(Exception):
    """The portal could not be reached, refused a request, or answered something unreadable."""


class PortalUnavailable(GatewayError):
    """No answer, a network error or timeout, or a 5xx: worth retrying later."""


class PortalRefused(GatewayError):
    """A 4xx the caller cannot fix by retrying (bad key, bad request, conflict)."""

    def __init__(self, status: int, code: str, message: str, fields: Mapping[str, object] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


class ProtocolError(GatewayError):
    """An answer that does not follow the data-plane protocol (bad JSON, wrong shape, unknown version)."""


class ResolveError(LookupError):
    """`PinMap.resolve` cannot name a snapshot for this (organisation, alias)."""


class PinMapNotReady(ResolveError):
    """No pin map yet: never synced and no cache file to start from."""


class UnknownAlias(ResolveError):
    """The alias is not in the pin map (the `404 model not found` of a gateway)."""

    def __init__(self, org: str, alias: str):
        super().__init__(f"{alias!r} is not a model alias in the pin map (organisation {org!r})")
        self.org = org
        self.alias = alias


class MissingSnapshot(ResolveError):
    """The map routes this alias to a snapshot it does not describe (an inconsistent map).

    Never answered by falling back to another snapshot: serving something else than the pin would
    break the contract the map encodes.
    """

    def __init__(self, org: str, alias: str, snapshot: str):
        super().__init__(f"the pin map routes {org!r}/{alias!r} to {snapshot!r} but does not describe it")
        self.org = org
        self.alias = alias
        self.snapshot = snapshot
