"""The pin map: a local copy of who is served what, kept current in the background, resolved from memory.

**The hot path.** `PinMap.resolve()` reads one attribute and does two dict subscripts: no lock, no
I/O, no clock. Everything a call could need is computed when a map is applied: for every organisation
the map lists, a table alias -> `Resolution` (its pins laid over the alias defaults), each carrying
the status that holds now. Applying a sync builds a new immutable `_State` and swaps it in with one
reference assignment, so a reader sees the old map or the new one, never a mix of both.

**Statuses follow the clock without reading it per call.** A status can only change at one of a
route's lifecycle instants (released, deprecated, sunset, retention). Each state knows the earliest
such instant ahead, and a timer swaps in a state rebuilt for the new time when it passes: the status a
call sees is the one derived at that call's time, give or take the timer's latency (milliseconds).
Reading the clock on every call instead would cost about as much as the whole lookup.

**Writers** (syncs, the lifecycle timer, loading the cache) are serialised by `_write_lock`, which
`resolve()` never takes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import operator
import os
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from time import time
from typing import Any, Literal

from vcp_gateway._client import Backoff, PortalClient, Response
from vcp_gateway.errors import (
    GatewayError,
    MissingSnapshot,
    PinMapNotReady,
    ProtocolError,
    UnknownAlias,
)

log = logging.getLogger(__name__)

PIN_MAP_PATH = "/api/v1/gateway/pin-map/"
PROTOCOL_VERSION = 1
CACHE_FORMAT = 1
MAX_WAIT = 60
DEFAULT_BACKOFF = Backoff()
# The lifecycle timer re-reads the wall clock at least this often, so a stepped clock (NTP, a resumed
# VM) delays a status change by at most this long.
_MAX_TIMER_DELAY = 60.0

Status = Literal["preview", "active", "deprecated", "retired", "purged"]
Source = Literal["pin", "alias-default"]
Document = dict[str, dict[str, Any]]
"""The map as the portal sends it: {"snapshots": {...}, "aliases": {...}, "pins": {org: {...}}}."""

_EMPTY_DOCUMENT: Document = {"snapshots": {}, "aliases": {}, "pins": {}}


@dataclass(frozen=True, slots=True)
class Resolution:
    """What serves `alias` for `org`, with its lifecycle. Instants are aware UTC datetimes."""

    org: str
    alias: str
    snapshot: str
    family: str
    status: Status
    source: Source
    policy: str | None  # the pin's upgrade policy; None when the alias default serves
    deprecated_at: dt.datetime | None
    sunset_at: dt.datetime | None  # effective retirement: extended support end if granted, else retires_at
    retention_until: dt.datetime | None
    successor: str | None
    deprecation_url: str | None
    successor_url: str | None


class PinMap:
    """The gateway's copy of the portal's pin map (see docs/data-plane.md).

        pin_map = PinMap("https://portal.example", gateway_key, cache_path="/var/lib/gw/pin-map.json")
        pin_map.start()                        # background long-poll; stop() on shutdown
        resolution = pin_map.resolve("acme", "v1-chat")
        response_headers.update(pin_map.headers(resolution))

    `cache_path`: after every applied change the map is written there (atomically), and a new PinMap
    starts from it, so a gateway restarting while the portal is down still serves. The file's mtime
    is the last time its map was confirmed current; `staleness()` counts from it until a sync works.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        cache_path: str | os.PathLike[str] | None = None,
        timeout: float = 10.0,
        wait: int = 30,
        backoff: Backoff = DEFAULT_BACKOFF,
    ):
        if not 1 <= wait <= MAX_WAIT:
            raise ValueError(f"wait must be 1 to {MAX_WAIT} seconds (the portal refuses more)")
        self._client = PortalClient(base_url, key, timeout=timeout)
        self._cache_path = Path(cache_path) if cache_path is not None else None
        self._wait = wait
        self._backoff = backoff
        self._state = _NO_MAP
        self._write_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._synced_at: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.consecutive_failures = 0
        """Background syncs that failed in a row (0 while the portal answers)."""
        self.last_error: str | None = None
        """Why the last background sync failed, while it keeps failing."""
        if self._cache_path is not None:
            self._load_cache(self._cache_path)

    # -- reading -------------------------------------------------------------------------------

    def resolve(self, org: str, alias: str) -> Resolution:
        """The snapshot serving `alias` for `org`: its pin, else the alias default. Memory only.

        Raises `UnknownAlias` (alias not in the map), `MissingSnapshot` (the map names a snapshot it
        does not describe) or `PinMapNotReady` (no map yet): all `LookupError`s.
        """
        state = self._state
        try:
            return state.tables[org][alias]
        except KeyError:
            pass
        return state.fallback(org, alias)

    @staticmethod
    def headers(resolution: Resolution) -> dict[str, str]:
        """Lifecycle headers to pass on: Deprecation (RFC 9745), Sunset (RFC 8594), Link.

        Empty for an active or preview snapshot; each header only when its date or link is known.
        """
        if resolution.status in ("active", "preview"):
            return {}
        headers = {}
        if resolution.deprecated_at is not None:
            headers["Deprecation"] = f"@{math.floor(resolution.deprecated_at.timestamp())}"
        if resolution.sunset_at is not None:
            headers["Sunset"] = formatdate(resolution.sunset_at.timestamp(), usegmt=True)
        links = []
        if resolution.deprecation_url:
            links.append(f'<{resolution.deprecation_url}>; rel="deprecation"; type="text/html"')
        if resolution.successor_url:
            links.append(f'<{resolution.successor_url}>; rel="successor-version"')
        if links:
            headers["Link"] = ", ".join(links)
        return headers

    @property
    def ready(self) -> bool:
        """Whether there is a map to resolve from (synced, or loaded from the cache file)."""
        return self._state.document is not None

    @property
    def revision(self) -> int | None:
        return self._state.revision

    @property
    def last_synced_at(self) -> dt.datetime | None:
        """When the map was last confirmed current (a sync, or the cache file's mtime)."""
        synced = self._synced_at
        return None if synced is None else dt.datetime.fromtimestamp(synced, dt.UTC)

    def staleness(self) -> float | None:
        """Seconds since the map was last confirmed current; None when there is no map."""
        synced = self._synced_at
        return None if synced is None else max(0.0, time() - synced)

    # -- syncing -------------------------------------------------------------------------------

    def sync(self) -> bool:
        """Bring the map up to date once: the full map the first time, a delta after. Blocking.

        Returns whether an entry of the map changed. Raises `PortalUnavailable` (unreachable, 5xx),
        `PortalRefused` (e.g. a wrong key) or `ProtocolError`; the map in use is then unchanged.
        """
        return self._sync(wait=None, cancel=None)

    def start(self) -> None:
        """Keep the map current from a daemon thread (long-poll, backing off while the portal is down)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this PinMap is already started")
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._poll, args=(self._stop,), name="vcp-pin-map", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread. An in-flight long-poll is interrupted, so this returns at once.

        The map keeps serving (and its statuses keep following the clock) after stop().
        """
        self._stop.set()
        self._client.abort(self._stop)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _poll(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._sync(wait=self._wait if self.ready else None, cancel=stop)
            except Exception as exc:  # whatever happens, the thread must outlive it
                if stop.is_set():
                    return
                self.consecutive_failures += 1
                self.last_error = str(exc)
                delay = self._backoff.delay(self.consecutive_failures - 1)
                expected = isinstance(exc, GatewayError)
                log.log(
                    logging.WARNING if expected else logging.ERROR,
                    "pin map sync failed (%s); retrying in %.1f s",
                    exc,
                    delay,
                    exc_info=not expected,
                )
                stop.wait(delay)
            else:
                self.last_error = None
                self.consecutive_failures = 0

    def _sync(self, wait: int | None, cancel: threading.Event | None) -> bool:
        base = self._state
        if base.revision is None:
            return self._fetch_full(base, cancel)
        params = {"since": str(base.revision)}
        if wait:
            # No If-None-Match on a long-poll: an immediate 304 would turn it into a busy loop.
            params["wait"] = str(wait)
        response = self._get(params, etag=None if wait else base.etag, wait=wait, cancel=cancel)
        if response.status in (400, 410):
            # 410: the change log no longer reaches back to our revision. 400: the portal does not know
            # our revision at all (e.g. its database was restored from a backup). Start over.
            log.info(
                "pin map delta since %s refused (%s); fetching the full map", base.revision, response.status
            )
            return self._fetch_full(base, cancel)
        return self._accept(base, response)

    def _fetch_full(self, base: _State, cancel: threading.Event | None) -> bool:
        return self._accept(base, self._get({}, etag=base.etag, wait=None, cancel=cancel))

    def _get(
        self, params: dict[str, str], *, etag: str | None, wait: int | None, cancel: threading.Event | None
    ) -> Response:
        return self._client.request(
            "GET",
            PIN_MAP_PATH,
            params=params,
            headers={"If-None-Match": etag} if etag else None,
            read_timeout=self._client.timeout + (wait or 0),
            cancel=cancel,
        )

    def _accept(self, base: _State, response: Response) -> bool:
        """Apply a pin-map answer to `base`, unless another writer moved on since `base` was read."""
        if response.status == 304:
            if base.document is None:
                raise ProtocolError("304 Not Modified although the gateway has no map")
            revision, document, changed = base.revision, base.document, False
        elif response.status == 200:
            revision, document, changed = _read_answer(response.json(), base)
        else:
            raise response.error()
        etag = response.headers.get("ETag") or f'"{revision}"'
        with self._write_lock:
            if self._state.document is not base.document:
                return False  # a concurrent sync applied an answer; the next sync starts from it
            if changed or revision != base.revision:
                self._install(_build(document, revision, etag, time()))
                self._save_cache()
            else:
                self._touch_cache()
            self._synced_at = time()
        return changed

    # -- state and lifecycle timer -------------------------------------------------------------

    def _install(self, state: _State) -> None:
        """Make `state` current and arm the timer for its next status change. Caller holds _write_lock."""
        self._state = state
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if state.next_change < math.inf:
            delay = min(max(state.next_change - time(), 0.0), _MAX_TIMER_DELAY)
            # A weak reference: a pending timer must not keep a discarded PinMap alive.
            self._timer = threading.Timer(delay, _lifecycle_timer_fired, (weakref.ref(self),))
            self._timer.daemon = True
            self._timer.start()

    def _advance(self) -> None:
        """Rebuild the state for the current time if a lifecycle instant passed, else re-arm the timer."""
        with self._write_lock:
            state, now = self._state, time()
            if state.document is None or state.revision is None:
                return
            self._install(
                _build(state.document, state.revision, state.etag, now) if now >= state.next_change else state
            )

    # -- cache file ----------------------------------------------------------------------------

    def _load_cache(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the pin map cache %s: %s", path, exc)
            return
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
                raise ProtocolError(f"not a pin map cache file of format {CACHE_FORMAT}")
            revision = _revision(record.get("revision"))
            etag = record.get("etag")
            if etag is not None and not isinstance(etag, str):
                raise ProtocolError("etag must be a string or null")
            document, _ = _merge(_EMPTY_DOCUMENT, _object(record.get("map"), "map"))
            state = _build(document, revision, etag, time())
        except (ValueError, ProtocolError) as exc:  # json errors are ValueErrors
            log.warning("ignoring the unreadable pin map cache %s: %s", path, exc)
            return
        with self._write_lock:
            self._install(state)
            self._synced_at = mtime
        log.info("pin map revision %s loaded from %s (%.0f s old)", revision, path, self.staleness())

    def _save_cache(self) -> None:
        """Write the current map to the cache file: a temporary file, fsync, then os.replace."""
        path, state = self._cache_path, self._state
        if path is None:
            return
        record = {
            "format": CACHE_FORMAT,
            "revision": state.revision,
            "etag": state.etag,
            "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "map": state.document,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    json.dump(record, file, ensure_ascii=False, separators=(",", ":"))
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("cannot write the pin map cache %s: %s", path, exc)

    def _touch_cache(self) -> None:
        """Note in the cache file's mtime that its map was just confirmed current."""
        if self._cache_path is not None:
            # No file (its write failed and was logged) or read-only: staleness then over-reports.
            with contextlib.suppress(OSError):
                os.utime(self._cache_path)


def _lifecycle_timer_fired(ref: weakref.ref[PinMap]) -> None:
    pin_map = ref()
    if pin_map is not None:
        pin_map._advance()


# -- the immutable state ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    document: Document | None  # the map as received; never modified once built into a state
    revision: int | None
    etag: str | None
    tables: dict[str, dict[str, Resolution]]  # org -> alias -> resolution, for every org the map lists
    defaults: dict[str, Resolution]  # alias -> its default's resolution (org ""), for unlisted orgs
    unroutable: dict[tuple[str | None, str], str]  # (org, or None for the default; alias) -> missing snapshot
    next_change: float  # the earliest instant ahead at which a status changes (inf: none)

    def fallback(self, org: str, alias: str) -> Resolution:
        """resolve() when the tables have no entry: organisations the map does not list, and errors."""
        if self.document is None:
            raise PinMapNotReady("no pin map yet: no sync has succeeded and there was no cache file")
        template = self.defaults.get(alias)
        if template is not None and org not in self.tables:
            return _with_org(template, org)
        missing = self.unroutable.get((org, alias)) or self.unroutable.get((None, alias))
        if missing is not None:
            raise MissingSnapshot(org, alias, missing)
        raise UnknownAlias(org, alias)


_NO_MAP = _State(None, None, None, {}, {}, {}, math.inf)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """A snapshot entry of the map, parsed once per build."""

    name: str
    family: str
    released: float  # -inf when unknown: never a preview
    deprecated_at: dt.datetime | None
    retires_at: dt.datetime | None
    retention_until: dt.datetime | None
    successor: str | None
    deprecation_url: str | None
    successor_url: str | None

    @classmethod
    def parse(cls, name: str, entry: dict[str, Any]) -> _Snapshot:
        where = f"snapshots[{name!r}]"
        released = _instant(entry, "released_at", where)
        return cls(
            name=name,
            family=_text(entry, "family", where),
            released=released.timestamp() if released else -math.inf,
            deprecated_at=_instant(entry, "deprecated_at", where),
            retires_at=_instant(entry, "retires_at", where),
            retention_until=_instant(entry, "retention_until", where),
            successor=_optional_text(entry, "successor", where),
            deprecation_url=_optional_text(entry, "deprecation_url", where),
            successor_url=_optional_text(entry, "successor_url", where),
        )


def _build(document: Document, revision: int, etag: str | None, now: float) -> _State:
    """Precompute every route of `document` with the statuses that hold at `now`."""
    snapshots = {name: _Snapshot.parse(name, entry) for name, entry in document["snapshots"].items()}
    aliases = document["aliases"]
    defaults: dict[str, Resolution] = {}
    unroutable: dict[tuple[str | None, str], str] = {}
    changes = [math.inf]
    for alias, entry in aliases.items():
        target = _text(entry, "default", f"aliases[{alias!r}]")
        if target not in snapshots:
            unroutable[None, alias] = target
            continue
        defaults[alias], change = _route("", alias, snapshots[target], "alias-default", None, None, now)
        changes.append(change)
    tables: dict[str, dict[str, Resolution]] = {}
    for org, pins in document["pins"].items():
        table = {alias: _with_org(default, org) for alias, default in defaults.items()}
        for alias, pin in pins.items():
            where = f"pins[{org!r}][{alias!r}]"
            target = _text(pin, "snapshot", where)
            policy = _optional_text(pin, "policy", where)
            extended_until = _instant(pin, "extended_support_until", where)
            if alias not in aliases:
                continue  # a pin on an alias the map does not route: nobody can ask for it
            if target not in snapshots:
                unroutable[org, alias] = target
                table.pop(alias, None)  # never serve the default in place of a pin
                continue
            table[alias], change = _route(org, alias, snapshots[target], "pin", policy, extended_until, now)
            changes.append(change)
        tables[org] = table
    return _State(document, revision, etag, tables, defaults, unroutable, min(changes))


def _route(
    org: str,
    alias: str,
    snapshot: _Snapshot,
    source: Source,
    policy: str | None,
    extended_until: dt.datetime | None,
    now: float,
) -> tuple[Resolution, float]:
    """The resolution holding at `now`, and the next instant its status changes (inf: never)."""
    sunset_at = extended_until or snapshot.retires_at
    deprecated, sunset, retention = (
        at.timestamp() if at else math.inf
        for at in (snapshot.deprecated_at, sunset_at, snapshot.retention_until)
    )
    status = _status(now, snapshot.released, deprecated, sunset, retention)
    change = min((t for t in (snapshot.released, deprecated, sunset, retention) if t > now), default=math.inf)
    resolution = Resolution(
        org=org,
        alias=alias,
        snapshot=snapshot.name,
        family=snapshot.family,
        status=status,
        source=source,
        policy=policy,
        deprecated_at=snapshot.deprecated_at,
        sunset_at=sunset_at,
        retention_until=snapshot.retention_until,
        successor=snapshot.successor,
        deprecation_url=snapshot.deprecation_url,
        successor_url=snapshot.successor_url,
    )
    return resolution, change


_FIELDS_AFTER_ORG = operator.attrgetter(*(field.name for field in dataclasses.fields(Resolution)[1:]))


def _with_org(template: Resolution, org: str) -> Resolution:
    """`dataclasses.replace(template, org=org)` at half the cost: builds run it for every org x alias."""
    return Resolution(org, *_FIELDS_AFTER_ORG(template))


def _status(now: float, released: float, deprecated: float, sunset: float, retention: float) -> Status:
    """The protocol's derivation, in its order of precedence. Unknown dates are +inf (-inf: released)."""
    if now >= retention:
        return "purged"
    if now >= sunset:
        return "retired"
    if now >= deprecated:
        return "deprecated"
    if now < released:
        return "preview"
    return "active"


# -- reading answers -------------------------------------------------------------------------------


def _read_answer(body: object, base: _State) -> tuple[int, Document, bool]:
    """(revision, document, whether an entry changed) for a 200 pin-map answer applied to `base`."""
    if not isinstance(body, dict):
        raise ProtocolError("a pin map answer is a JSON object")
    if body.get("version") != PROTOCOL_VERSION:
        raise ProtocolError(f"pin map version {body.get('version')!r} is not {PROTOCOL_VERSION}")
    revision = _revision(body.get("revision"))
    if body.get("full") is True:
        document, _ = _merge(_EMPTY_DOCUMENT, body)
        return revision, document, document != base.document
    if body.get("full") is not False:
        raise ProtocolError("a pin map answer says whether it is full (true or false)")
    if base.document is None or body.get("since") != base.revision:
        raise ProtocolError(f"a delta since {body.get('since')!r} does not apply to revision {base.revision}")
    document, changed = _merge(base.document, body)
    return revision, document, changed


def _merge(base: Document, answer: Mapping[str, Any]) -> tuple[Document, bool]:
    """Apply an answer's entries to `base` as the protocol says: a value sets, null deletes.

    Returns a new document (`base` is not modified) and whether any entry changed. A full map is
    merged into an empty document. Checks the shape down to the entries; _build checks their fields.
    """
    merged: Document = {}
    changed = False
    for section in ("snapshots", "aliases"):
        entries = dict(base[section])
        for name, value in _object(answer.get(section, {}), section).items():
            changed |= _put(entries, name, value, f"{section}[{name!r}]")
        merged[section] = entries
    organisations = dict(base["pins"])
    for org, pins in _object(answer.get("pins", {}), "pins").items():
        if pins is None:  # the organisation itself is gone
            changed |= organisations.pop(org, None) is not None
            continue
        changed |= org not in organisations
        entries = dict(organisations.get(org, {}))
        for alias, value in _object(pins, f"pins[{org!r}]").items():
            changed |= _put(entries, alias, value, f"pins[{org!r}][{alias!r}]")
        organisations[org] = entries
    merged["pins"] = organisations
    return merged, changed


def _put(entries: dict[str, Any], name: str, value: object, where: str) -> bool:
    if value is None:
        return entries.pop(name, None) is not None
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be an object or null")
    if entries.get(name) == value:
        return False
    entries[name] = value
    return True


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be an object")
    return value


def _revision(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"revision {value!r} is not a non-negative integer")
    return value


def _text(entry: dict[str, Any], field: str, where: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{where}.{field} must be a non-empty string")
    return value


def _optional_text(entry: dict[str, Any], field: str, where: str) -> str | None:
    value = entry.get(field)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{where}.{field} must be a string or null")
    return value or None


def _instant(entry: dict[str, Any], field: str, where: str) -> dt.datetime | None:
    value = entry.get(field)
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ProtocolError(f"{where}.{field}: {value!r} is not an ISO 8601 instant") from None
    if at.tzinfo is None:
        raise ProtocolError(f"{where}.{field}: {value!r} has no time zone")
    return at.astimezone(dt.UTC)
