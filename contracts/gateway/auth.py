"""Gateway keys: who a gateway is, cached by its key's hash, and the permission of gateway endpoints.

A gateway key (`vcpgw_…`) authenticates through the same `Authorization: Bearer` header as an
organisation key (contracts.tenancy.auth.ApiKeyAuthentication tells them apart by prefix). It acts
for no organisation: customer endpoints refuse it with 403, and gateway endpoints refuse every
other caller with 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import permissions

from contracts.models import Gateway

GATEWAY_ONLY = "A gateway key works only on the /api/v1/gateway/ endpoints."


def gateway_cache_key(key_hash: str) -> str:
    return f"gateway-key:{key_hash}"


def is_gateway_key(raw: str) -> bool:
    return raw.startswith(settings.GATEWAY_KEY_PREFIX)


@dataclass(frozen=True)
class GatewayPrincipal:
    """Stands in for request.user when a request is authenticated by a gateway key."""

    gateway_id: int
    name: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    pk: None = None
    id: None = None
    email: str = ""

    def __str__(self) -> str:
        return f"gateway:{self.name}"


def gateway_load(key_hash: str) -> dict[str, Any] | None:
    """{"id", "name"} of the active gateway with this key hash, cached; None when unknown or revoked."""
    cached = cache.get(gateway_cache_key(key_hash))
    if cached is not None:
        return cached or None
    gateway = Gateway.objects.filter(key_hash=key_hash).only("id", "name", "revoked_at").first()
    if gateway is None or gateway.revoked_at is not None:
        cache.set(gateway_cache_key(key_hash), {}, 30)
        return None
    info = {"id": gateway.pk, "name": gateway.name}
    cache.set(gateway_cache_key(key_hash), info, settings.API_KEY_CACHE_SECONDS)
    return info


class IsGateway(permissions.BasePermission):
    message = "This endpoint takes a gateway key (manage.py create_gateway); an organisation key or a session cannot use it."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, GatewayPrincipal)
