"""API authentication by organisation key, organisation context for the API, per-key throttling.

A warm request authenticated by key makes no SQL query: the key's identity is cached by its hash and
its last-use time is written at most once a minute.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from contracts.cache import counter_hit
from contracts.gateway.auth import GATEWAY_ONLY, GatewayPrincipal, gateway_load, is_gateway_key
from contracts.models import ApiKey, ApiKeyScope, Membership, Organization, Role


def api_key_cache_key(key_hash: str) -> str:
    return f"apikey:{key_hash}"


@dataclass(frozen=True)
class KeyPrincipal:
    """Stands in for request.user when a request is authenticated by an API key."""

    key_id: int
    scope: str
    organization_id: int | None
    organization_slug: str
    organization_name: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False
    pk: None = None
    id: None = None
    email: str = ""
    key_prefix: str = ""
    audit_actor_kind: str = "api-key"

    @property
    def audit_actor_label(self) -> str:
        return f"api-key:{self.key_prefix or self.key_id}"

    @property
    def is_staff(self) -> bool:
        return self.scope == ApiKeyScope.STAFF

    @property
    def organization(self) -> Organization | None:
        if self.organization_id is None:
            return None
        # Built from the cache, not the database: pk and slug are all the selectors need.
        org = Organization(id=self.organization_id, slug=self.organization_slug, name=self.organization_name)
        org._state.adding = False
        org._state.db = "default"
        return org

    def __str__(self) -> str:
        return f"api-key:{self.key_id}"


def _load_key(key_hash: str) -> dict[str, Any] | None:
    cached = cache.get(api_key_cache_key(key_hash))
    if cached is not None:
        return cached or None
    key = ApiKey.objects.select_related("organization").filter(key_hash=key_hash).first()
    if key is None or key.revoked_at is not None:
        # Remember misses briefly so a flood of bad keys does not reach the database.
        cache.set(api_key_cache_key(key_hash), {}, 30)
        return None
    info = {
        "id": key.pk,
        "scope": key.scope,
        "org_id": key.organization_id,
        "org_slug": key.organization.slug if key.organization else "",
        "org_name": key.organization.name if key.organization else "",
        "prefix": key.prefix,
    }
    cache.set(api_key_cache_key(key_hash), info, settings.API_KEY_CACHE_SECONDS)
    return info


def client_ip(request) -> str | None:
    """The caller's address as the ledger records it.

    Behind TRUSTED_PROXIES reverse proxies (settings), the address the outermost trusted proxy saw is
    the entry it appended to X-Forwarded-For; anything before it is the caller's own claim.
    """
    meta = getattr(request, "META", {})
    proxies = getattr(settings, "TRUSTED_PROXIES", 0)
    if proxies:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return meta.get("REMOTE_ADDR") or None


SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
_last_touch: dict[int, float] = {}


def touch_key(key_id: int) -> None:
    """Record a key's last use at most once a minute (per process first, then across processes)."""
    now = time.monotonic()
    if now - _last_touch.get(key_id, -1e9) < settings.API_KEY_TOUCH_SECONDS:
        return
    _last_touch[key_id] = now
    if cache.add(f"apikey-touch:{key_id}", 1, settings.API_KEY_TOUCH_SECONDS):
        ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            raise exceptions.AuthenticationFailed("Authorization must be 'Bearer <api key>'.")
        if is_gateway_key(parts[1]):
            gateway = gateway_load(ApiKey.hash_key(parts[1]))
            if gateway is None:
                raise exceptions.AuthenticationFailed("Unknown or revoked gateway key.")
            return GatewayPrincipal(gateway_id=gateway["id"], name=gateway["name"]), gateway
        info = _load_key(ApiKey.hash_key(parts[1]))
        if info is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        touch_key(info["id"])
        principal = KeyPrincipal(
            key_id=info["id"],
            scope=info["scope"],
            organization_id=info["org_id"],
            organization_slug=info["org_slug"],
            organization_name=info["org_name"],
            key_prefix=info.get("prefix", ""),
        )
        return principal, info

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


def request_organization(request) -> Organization | None:
    """The organisation an API request acts for: the key's, or the session user's membership.

    A session user in several organisations names one with ?org=<slug> or the X-Organization header;
    a staff key names one the same way for the endpoints that accept it.
    """
    if hasattr(request, "_vcp_organization"):
        return request._vcp_organization
    user = request.user
    if isinstance(user, GatewayPrincipal):
        raise exceptions.PermissionDenied(GATEWAY_ONLY)
    org: Organization | None = None
    slug = request.query_params.get("org") or request.headers.get("X-Organization")
    if slug and slug != "*" and not SLUG_RE.match(slug):
        raise exceptions.ValidationError({"org": "An organisation slug: letters, digits, '-' and '_'."})
    if isinstance(user, KeyPrincipal):
        org = user.organization
        if org is None and user.is_staff and slug:
            org = Organization.objects.filter(slug=slug).first()
    elif user is not None and user.is_authenticated:
        memberships = Membership.objects.select_related("organization").filter(user=user)
        if slug:
            membership = memberships.filter(organization__slug=slug).first()
            org = membership.organization if membership else None
            if org is None and user.is_staff:
                org = Organization.objects.filter(slug=slug).first()
        else:
            membership = memberships.order_by("organization__slug").first()
            org = membership.organization if membership else None
    request._vcp_organization = org
    return org


def request_role(request) -> str | None:
    """The caller's role in the request's organisation. Keys act with the admin role of their org."""
    user = request.user
    if isinstance(user, GatewayPrincipal):
        return None
    if isinstance(user, KeyPrincipal):
        return Role.ADMIN if user.organization_id else None
    org = request_organization(request)
    if org is None or user is None or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, organization=org).values_list("role", flat=True).first()


class IsOrganizationMember(permissions.BasePermission):
    """Authenticated, and acting for an organisation it belongs to."""

    message = "Authenticate with an organisation API key or a session."

    def has_permission(self, request, view) -> bool:
        if request.user is None or not request.user.is_authenticated:
            return False
        if isinstance(request.user, GatewayPrincipal):
            raise exceptions.PermissionDenied(GATEWAY_ONLY)
        if request_organization(request) is None:
            raise exceptions.NotFound("No organisation found for this request (use ?org=<slug>).")
        return True


class IsStaff(permissions.BasePermission):
    message = "This operation needs a vendor staff key or a staff session."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user is not None and user.is_authenticated and user.is_staff)


def throttle_allows(ident: str) -> bool:
    """Count one request of `ident` in the current fixed window; False once over the rate."""
    throttle = ApiKeyRateThrottle()
    return throttle.allow_ident(throttle.cache_format % {"scope": throttle.scope, "ident": ident})


def throttle_window(ident: str) -> tuple[str, int, int | None]:
    """(counter key of the current window, its lifetime, the limit) for a caller that counts itself."""
    throttle = ApiKeyRateThrottle()
    key = throttle.cache_format % {"scope": throttle.scope, "ident": ident}
    if throttle.rate is None:
        return key, 1, None
    window = int(throttle.timer() // throttle.duration)
    return f"{key}:{window}", throttle.duration + 1, throttle.num_requests


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Per-key request rate (per user for sessions, per address for anonymous callers).

    A fixed-window counter (one cache increment per request) instead of DRF's sliding history, whose
    cost grows with the allowed rate: at thousands of requests a minute the history list itself
    becomes the hot path.
    """

    scope = "api_key"

    @property
    def cache(self):
        return caches["throttle"]

    def get_cache_key(self, request, view):
        user = request.user
        if isinstance(user, KeyPrincipal):
            ident = f"key-{user.key_id}"
        elif isinstance(user, GatewayPrincipal):
            ident = f"gateway-{user.gateway_id}"
        elif user is not None and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        key = self.get_cache_key(request, view)
        return True if key is None else self.allow_ident(key)

    def allow_ident(self, key: str) -> bool:
        if self.rate is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        window_key = f"{key}:{window}"
        count = counter_hit(self.cache, window_key, self.duration + 1)
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.window_end - self.now, 0)
