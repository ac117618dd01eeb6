"""Where the current action comes from (address and user agent), bound once per request.

The web layer binds it (portal.middleware.AuditOriginMiddleware) so that services deep below the
views can record "from where" without every signature carrying the request. Tasks and commands run
unbound: their entries have no address.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    ip: str | None = None
    user_agent: str = ""


_UNBOUND = Origin()
_origin: ContextVar[Origin | None] = ContextVar("audit_origin", default=None)


def origin_bind(*, ip: str | None, user_agent: str) -> Token:
    return _origin.set(Origin(ip=ip or None, user_agent=(user_agent or "")[:500]))


def origin_reset(token: Token) -> None:
    _origin.reset(token)


def origin_current() -> Origin:
    return _origin.get() or _UNBOUND
