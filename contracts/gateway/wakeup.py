"""Waking long-polling pin-map requests when the change log moves.

A waiting request registers a future on its event loop (`wait_for_revision`) and sleeps on it; it
re-reads the revision from the database when woken, so a wake-up carries no data and a spurious one
costs one query. What wakes it, by PIN_MAP_WAKEUP (settings):

- `postgres`: one listener thread per process holds a connection in LISTEN vcp_pin_map; the change
  log issues NOTIFY in the writing transaction, so every process hears every committed change.
- `redis`: one listener thread per process subscribes to `vcp:pin-map`; writers publish after commit.
- `local` (the embedded default): only the writing process's own after-commit hook. Writes of other
  processes (the Celery worker) are seen by polling every PIN_MAP_POLL_SECONDS.

Whatever the mode, a waiter also re-reads the revision every PIN_MAP_POLL_SECONDS, so a lost
notification (a listener reconnecting) delays an answer by at most that long, never forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

PG_CHANNEL = "vcp_pin_map"
REDIS_CHANNEL = "vcp:pin-map"

_lock = threading.Lock()
_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = set()
_listener: threading.Thread | None = None
_listening = threading.Event()
# The newest revision this process has heard of. Trusted instead of a query only while a listener
# hears every process's changes (it is forgotten whenever the listener (re)connects).
_known: int | None = None


def observe(revision: int) -> None:
    """Note a revision read from the database or heard from a notification."""
    global _known
    with _lock:
        if _known is None or revision > _known:
            _known = revision


def known_revision() -> int | None:
    """The current revision without a query, when the listener makes that trustworthy; else None."""
    if mode() == "local" or not _listening.is_set():
        return None
    return _known


def _listening_again() -> None:
    global _known
    with _lock:
        _known = None  # changes may have been missed while not listening: read the database again
    _listening.set()


def _wake(future: asyncio.Future, revision: int) -> None:
    if not future.done():
        future.set_result(revision)


def notify_local(revision: int) -> None:
    """Wake every request of this process that waits for a change."""
    if revision and _known is not None:
        observe(revision)
    with _lock:
        waiting = list(_waiters)
    for loop, future in waiting:
        with contextlib.suppress(RuntimeError):  # that request's loop is closed: it is gone
            loop.call_soon_threadsafe(_wake, future, revision)


def announce(revision: int) -> None:
    """After a change committed: wake this process's waiters, and the others' through Redis."""
    notify_local(revision)
    if mode() == "redis":
        try:
            _redis().publish(REDIS_CHANNEL, str(revision))
        except Exception:  # the waiters' polling covers a lost message
            log.warning("could not publish pin map revision %s on Redis", revision, exc_info=True)


def mode() -> str:
    return settings.PIN_MAP_WAKEUP


def _redis():
    return redis.Redis.from_url(settings.PIN_MAP_REDIS_URL)


def _postgres_conninfo() -> dict[str, Any]:
    db = connections["default"].settings_dict  # the test database under tests
    return {
        key: value
        for key, value in {
            "dbname": db.get("NAME"),
            "user": db.get("USER") or None,
            "password": db.get("PASSWORD") or None,
            "host": db.get("HOST") or None,
            "port": db.get("PORT") or None,
        }.items()
        if value
    }


def _listen_postgres() -> None:
    failures = 0
    while True:
        try:
            with psycopg.connect(**_postgres_conninfo(), autocommit=True) as conn:
                conn.execute(f"LISTEN {PG_CHANNEL}")
                _listening_again()
                failures = 0
                for notify in conn.notifies():
                    notify_local(int(notify.payload or 0))
        except Exception:
            _listening.clear()
            failures += 1
            log.warning("pin map listener lost PostgreSQL; reconnecting", exc_info=True)
            time.sleep(min(30.0, 0.5 * 2**failures))


def _listen_redis() -> None:
    failures = 0
    while True:
        try:
            pubsub = _redis().pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(REDIS_CHANNEL)
            _listening_again()
            failures = 0
            for message in pubsub.listen():
                if message.get("type") == "message":
                    notify_local(int(message.get("data") or 0))
        except Exception:
            _listening.clear()
            failures += 1
            log.warning("pin map listener lost Redis; reconnecting", exc_info=True)
            time.sleep(min(30.0, 0.5 * 2**failures))


def ensure_listener() -> bool:
    """Start this process's listener thread once, without waiting for it; True while it listens
    (always True in local mode). Until it listens, waiters re-read the revision often (`poll_seconds`)."""
    global _listener
    current = mode()
    if current == "local":
        return True
    with _lock:
        if _listener is None or not _listener.is_alive():
            target = _listen_postgres if current == "postgres" else _listen_redis
            _listener = threading.Thread(target=target, name=f"pin-map-{current}", daemon=True)
            _listener.start()
    return _listening.is_set()


def poll_seconds() -> float:
    """How long a waiter sleeps before re-reading the revision without a wake-up."""
    return settings.PIN_MAP_POLL_SECONDS if ensure_listener() else min(settings.PIN_MAP_POLL_SECONDS, 0.1)


def register() -> asyncio.Future:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    with _lock:
        _waiters.add((loop, future))
    return future


def unregister(future: asyncio.Future) -> None:
    with _lock:
        _waiters.discard((future.get_loop(), future))


def waiting() -> int:
    """How many requests of this process wait (operations, tests)."""
    with _lock:
        return len(_waiters)
