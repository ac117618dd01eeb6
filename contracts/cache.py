"""Redis cache backend that keeps one redis.Redis client per connection pool.

Django's RedisCacheClient builds a new redis.Redis object for every cache call; with redis-py 6 that
object builds its table of ~80 response callbacks each time, which costs more than the round trip
itself on the resolve hot path. The clients share the same pools, so reusing them is safe across
threads.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

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


def counter_hit(backend, key: str, ttl: int) -> int:
    """Increment a counter that expires `ttl` seconds after its first hit; one round trip on Redis."""
    if isinstance(backend, RedisCache):
        redis_key = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(redis_key, write=True).pipeline(transaction=False)
        pipe.incr(redis_key)
        pipe.expire(redis_key, ttl, nx=True)
        count, _ = pipe.execute()
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
        raw, count = script(keys=[value_key, count_key], args=[ttl])
        value = None if raw is None else backend._cache._serializer.loads(raw)
        return value, int(count)
    return backend.get(key), counter_hit(counter_backend, counter_key, ttl)
