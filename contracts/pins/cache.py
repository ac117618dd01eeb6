"""The shared generation number behind every cached resolution: each write that could change an
answer bumps it, so no process serves a copy older than the last such write."""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

RESOLVE_GENERATION_KEY = "resolve:generation"


def resolve_generation() -> int:
    generation = cache.get(RESOLVE_GENERATION_KEY)
    if generation is None:
        generation = int(timezone.now().timestamp() * 1000)
        cache.add(RESOLVE_GENERATION_KEY, generation, None)
        generation = cache.get(RESOLVE_GENERATION_KEY, generation)
    return generation


def resolve_cache_key(*, org_id: int, alias_name: str, generation: int | None = None) -> str:
    generation = resolve_generation() if generation is None else generation
    return f"resolve:{generation}:{org_id}:{alias_name}"


def _bump_generation() -> None:
    try:
        cache.incr(RESOLVE_GENERATION_KEY)
    except ValueError:
        cache.set(RESOLVE_GENERATION_KEY, int(timezone.now().timestamp() * 1000), None)


def resolve_cache_invalidate_all() -> None:
    """After any catalog change: every cached resolution becomes unreachable at once.

    Invalidated now and again after commit: a reader that cached the old state in between is
    cleared by the second pass.
    """
    _bump_generation()
    transaction.on_commit(_bump_generation)


def resolve_cache_invalidate_pin(*, org_id: int, alias_name: str) -> None:
    """A pin changed. Pins change rarely next to how often they are resolved, so this bumps the one
    generation every process checks (contracts.hotpath keeps per-process copies keyed by it)."""
    resolve_cache_invalidate_all()
