"""Redis cache backend that keeps one redis.Redis client per connection pool, and degrades
instead of failing when Redis is away.

Django's RedisCacheClient builds a new redis.Redis object for every cache call; with redis-py 6 that
object builds its table of ~80 response callbacks each time, which costs more than the round trip
itself on the resolve hot path. The clients share the same pools, so reusing them is safe across
threads.

The cache only ever holds copies of what the database says, so a Redis outage must not become an
outage of the portal: every cache operation that fails with a Redis error answers as a miss (reads)
or as not stored (writes), rate counters fail open, and the portal serves from the database until
Redis answers again (docs/operations.md, "Fault behaviour"). Entering and leaving that degraded
state is logged once each; `cache_errors_total` counts every failed operation.
"""

from __future__ import annotations

import functools
import logging
import threading

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.connection import ConnectionProxy
from prometheus_client import Counter
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

cache_errors_total = Counter(
    "vcp_cache_errors", "Cache operations that failed (Redis away) and were answered as a miss", ["operation"]
)


class _Degraded:
    """Whether the last cache operation of this process failed; logs the transitions only."""

    def __init__(self) -> None:
        self.active = False
        self._lock = threading.Lock()

    def failed(self, operation: str, exc: Exception) -> None:
        cache_errors_total.labels(operation=operation).inc()
        with self._lock:
            entering, self.active = not self.active, True
        if entering:
            log.warning(
                "cache unavailable (%s: %s): serving from the database", operation, type(exc).__name__
            )

    def succeeded(self) -> None:
        if self.active:
            with self._lock:
                leaving, self.active = self.active, False
            if leaving:
                log.warning("cache available again")


degraded = _Degraded()


def _soft(default, operation: str | None = None):
    """Answer `default` (or raise ValueError, like a missing key, when default is ValueError)."""

    def wrap(method):
        name = operation or method.__name__

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                result = method(self, *args, **kwargs)
            except RedisError as exc:
                degraded.failed(name, exc)
                if default is ValueError:
                    raise ValueError("cache unavailable") from exc
                return default() if callable(default) else default
            degraded.succeeded()
            return result

        return call

    return wrap


class _ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    # A Redis error reads as a miss and writes as "not stored"; incr as a missing key (ValueError).
    add = _soft(False)(RedisCacheClient.add)
    set = _soft(None)(RedisCacheClient.set)
    touch = _soft(False)(RedisCacheClient.touch)
    delete = _soft(False)(RedisCacheClient.delete)
    get_many = _soft(dict)(RedisCacheClient.get_many)
    has_key = _soft(False)(RedisCacheClient.has_key)
    incr = _soft(ValueError)(RedisCacheClient.incr)
    set_many = _soft(list)(RedisCacheClient.set_many)
    delete_many = _soft(None)(RedisCacheClient.delete_many)
    clear = _soft(False)(RedisCacheClient.clear)

    def get(self, key, default):
        try:
            value = super().get(key, default)
        except RedisError as exc:
            degraded.failed("get", exc)
            return default
        degraded.succeeded()
        return value

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class ReusedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClientRedisCacheClient


def _backend(backend):
    """The cache behind `django.core.cache.cache` (a ConnectionProxy, which no isinstance check
    sees through): without this the one-round-trip paths below silently fell back to two."""
    if isinstance(backend, ConnectionProxy):
        return caches[backend._alias]
    return backend


def counter_hit(backend, key: str, ttl: int) -> int:
    """Increment a counter that expires `ttl` seconds after its first hit; one round trip on Redis."""
    backend = _backend(backend)
    if isinstance(backend, RedisCache):
        redis_key = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(redis_key, write=True).pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, ttl, nx=True)
        try:
            count, _ = pipe.execute()
        except RedisError as exc:  # fail open: a rate limit is not worth an outage
            degraded.failed("counter", exc)
            return 0
        degraded.succeeded()
        return int(count)
    if backend.add(key, 1, ttl):
        return 1
    try:
        return backend.incr(key)
    except ValueError:  # expired between add and incr
        backend.set(key, 1, ttl)
        return 1


# GET one key and count a hit on another in a single Redis command (one round trip, atomic).
_GET_AND_COUNT_LUA = """
local value = redis.call('GET', KEYS[1])
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return {value, count}
"""
_scripts: dict[int, object] = {}


def get_and_count(backend, key: str, counter_backend, counter_key: str, ttl: int):
    """(value of `key`, count after hitting `counter_key`): one Redis command when both caches live on
    the same Redis, two plain calls otherwise."""
    backend, counter_backend = _backend(backend), _backend(counter_backend)
    if (
        isinstance(backend, RedisCache)
        and isinstance(counter_backend, RedisCache)
        and backend._servers == counter_backend._servers
    ):
        value_key = backend.make_and_validate_key(key)
        count_key = counter_backend.make_and_validate_key(counter_key)
        client = backend._cache.get_client(value_key, write=True)
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_GET_AND_COUNT_LUA)
        try:
            raw, count = script(keys=[value_key, count_key], args=[ttl])
        except RedisError as exc:  # no generation: the caller takes the full path, from the database
            degraded.failed("get_and_count", exc)
            return None, 0
        degraded.succeeded()
        value = None if raw is None else backend._cache._serializer.loads(raw)
        return value, int(count)
    return backend.get(key), counter_hit(counter_backend, counter_key, ttl)
