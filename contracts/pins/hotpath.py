"""The warm path of GET /api/v1/resolve/<alias>/: a customer's serving layer may call it on every
request, so a warm call costs one shared-cache read (the generation), one throttle counter, and no
SQL; everything else comes from per-process copies keyed by that generation.

Every write that could change an answer (pin change, alias move, lifecycle edit, key revocation)
bumps the shared generation (contracts.services.resolve_cache_invalidate_all), so a process never
serves a copy older than the last such write. A copy also expires at the next lifecycle date of its
snapshot, since status and headers change with time alone. Anything unusual (no key, a query string,
an unknown alias, a throttled key, a cold generation) returns None and the full DRF view answers.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from contracts.cache import get_and_count
from contracts.errors import ApplicationError
from contracts.models import ApiKey
from contracts.pins import selectors
from contracts.pins.cache import RESOLVE_GENERATION_KEY
from contracts.pins.headers import lifecycle_headers
from contracts.tenancy.auth import KeyPrincipal, _load_key, throttle_allows, throttle_window, touch_key

_MAX_ENTRIES = 20_000
_keys: dict[str, tuple[int, dict[str, Any]]] = {}
_answers: dict[tuple[int, str, str], tuple[int, float, bytes, dict[str, str]]] = {}
_renderer = JSONRenderer()


def _expires_at(snapshot: dict[str, Any]) -> float:
    now = timezone.now()
    horizon = time.time() + settings.RESOLVE_CACHE_SECONDS
    for field in ("released_at", "deprecated_at", "retires_at", "retention_until"):
        value = snapshot.get(field)
        if value:
            boundary = dt.datetime.fromisoformat(value)
            if boundary > now:
                horizon = min(horizon, time.time() + (boundary - now).total_seconds())
    return horizon


def _remember(store: dict, key, value) -> None:
    if len(store) >= _MAX_ENTRIES:
        store.clear()
    store[key] = value


def resolve_response(request: HttpRequest, alias: str) -> HttpResponse | None:
    if request.method != "GET" or request.META.get("QUERY_STRING"):
        return None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer ") or " " in header[7:]:
        return None
    key_hash = ApiKey.hash_key(header[7:])
    known = _keys.get(key_hash)
    if known is None:
        # First call of this key in this process: two round trips, then one from here on.
        generation = cache.get(RESOLVE_GENERATION_KEY)
        if generation is None:
            return None
        info = _load_key(key_hash)
        if info is None or not info["org_id"] or not throttle_allows(f"key-{info['id']}"):
            return None
        _remember(_keys, key_hash, (generation, info))
    else:
        # The generation and the key's request counter in one round trip. Counting before knowing
        # whether the key was revoked meanwhile only ever counts one request too many for it.
        counter_key, ttl, limit = throttle_window(f"key-{known[1]['id']}")
        generation, count = get_and_count(cache, RESOLVE_GENERATION_KEY, caches["throttle"], counter_key, ttl)
        if generation is None or (limit is not None and count > limit):
            return None
        info = known[1]
        if known[0] != generation:
            info = _load_key(key_hash)
            if info is None or not info["org_id"]:
                return None
            _remember(_keys, key_hash, (generation, info))
    touch_key(info["id"])

    host = request.get_host()
    answer_key = (info["org_id"], alias, host)
    answer = _answers.get(answer_key)
    if answer is None or answer[0] != generation or answer[1] <= time.time():
        principal = KeyPrincipal(
            key_id=info["id"],
            scope=info["scope"],
            organization_id=info["org_id"],
            organization_slug=info["org_slug"],
            organization_name=info["org_name"],
        )
        try:
            payload = selectors.resolve(org=principal.organization, alias=alias).as_dict()
        except ApplicationError:
            return None
        headers = lifecycle_headers(
            payload["snapshot"], request, extended_support_until=payload["extended_support_until"]
        )
        headers.update({"Vary": "Accept", "Allow": "GET, HEAD, OPTIONS"})
        answer = (generation, _expires_at(payload["snapshot"]), _renderer.render(payload), headers)
        _remember(_answers, answer_key, answer)
    return HttpResponse(answer[2], content_type="application/json", headers=answer[3])


def forget() -> None:
    """Drop this process's copies (tests; a deploy restarts processes anyway)."""
    _keys.clear()
    _answers.clear()
