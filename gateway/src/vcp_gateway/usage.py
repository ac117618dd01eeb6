"""Hourly usage counts, reported to the portal in idempotent batches (docs/data-plane.md, usage).

    usage = UsageReporter(portal_url, gateway_key)
    usage.start()                                  # background flusher; stop() flushes once more
    usage.count("acme", "v1-chat", resolution.snapshot)   # per served request

How counting stays off the request path, how memory stays bounded and how batches are delivered
exactly once: see `UsageReporter`.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from time import monotonic, time
from typing import Any

from vcp_gateway._client import Backoff, PortalClient
from vcp_gateway.errors import PortalRefused, PortalUnavailable

log = logging.getLogger(__name__)

USAGE_PATH = "/api/v1/gateway/usage/"
MAX_BATCH_ROWS = 5_000
DEFAULT_BACKOFF = Backoff()
# While started, counts wait at most about this long in the inbox before being folded into buckets
# (plus one request's timeout while a batch is in flight).
_FOLD_INTERVAL = 1.0
_ROW_FIELD = re.compile(r"rows\[(\d+)\]")

_Key = tuple[str, str, str, int]  # organisation, alias, snapshot, UTC hour (hours since the epoch)


class UsageReporter:
    """Counts served requests per (organisation, alias, snapshot, UTC hour) and reports them.

    **Why count() never waits.** Request threads only append a tuple to `_inbox`, a
    `collections.deque`, whose appends and pops are thread-safe without a lock (a documented
    guarantee of deque). Everything else belongs to the flushing side: folding the inbox into
    hourly buckets, cutting batches, sending them. The flushing side is the background thread, or a
    caller of flush()/stop(); they are serialised by `_flush_lock`, which count() never touches, so
    no request ever waits on a flush in progress or on the network.

    **Bounded memory.** At most `max_buckets` buckets are held (counted but not yet accepted by the
    portal, including batches waiting for a retry). A request that would need a new bucket beyond
    that is dropped: added to `dropped` and reported in the next batch's `dropped` field. While the
    flusher runs, the inbox itself is folded at least every second.

    **Delivery.** Each batch (at most 5,000 rows) gets a uuid4 batch id once, reused on every retry,
    so the portal counts it once however often it is sent. A batch the portal answers with 5xx or
    cannot be reached for is retried with exponential backoff, then kept for the next flush. A 400
    (bad data) is never retried: the rows it names are discarded and counted in `rejected_requests`,
    the rest is sent as a new batch (nothing of the refused one was stored); when it names no row the
    whole batch is discarded.
    """

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        flush_interval: float = 60.0,
        max_buckets: int = 50_000,
        timeout: float = 10.0,
        attempts: int = 5,
        backoff: Backoff = DEFAULT_BACKOFF,
    ):
        self._client = PortalClient(base_url, key, timeout=timeout)
        self._flush_interval = flush_interval
        self._max_buckets = max_buckets
        self._attempts = attempts
        self._backoff = backoff
        self._inbox: collections.deque[_Key] = collections.deque()
        # Below: the flushing side's, under _flush_lock.
        self._flush_lock = threading.Lock()
        self._buckets: dict[_Key, int] = {}
        self._outbox: collections.deque[_Batch] = collections.deque()
        self._held = 0  # buckets held: in _buckets plus the rows of the batches in _outbox
        self._unreported_drops = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        """Requests counted but not kept because `max_buckets` buckets were already held."""
        self.rejected_batches = 0
        """Batches the portal refused with 400."""
        self.rejected_requests = 0
        """Requests in the rows of those batches that were discarded."""

    def count(self, org: str, alias: str, snapshot: str) -> None:
        """Count one served request in the current UTC hour. O(1), no lock, no I/O."""
        self._inbox.append((org, alias, snapshot, int(time() // 3600)))

    @property
    def pending_buckets(self) -> int:
        """Buckets held and not yet accepted by the portal (counts still in the inbox not included)."""
        return self._held

    def flush(self) -> bool:
        """Send everything counted so far. Returns True when nothing is left waiting for the portal."""
        with self._flush_lock:
            self._fold()
            self._cut_batches()
            while self._outbox:
                if not self._deliver(self._outbox[0]):
                    return False
            return True

    def start(self) -> None:
        """Flush every `flush_interval` seconds from a daemon thread, until stop()."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this UsageReporter is already started")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="vcp-usage", daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """Stop the flusher and flush once more, one attempt per batch. Returns that flush's result."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.flush()

    def _run(self, stop: threading.Event) -> None:
        next_flush = monotonic() + self._flush_interval
        while not stop.wait(min(_FOLD_INTERVAL, max(0.0, next_flush - monotonic()))):
            try:
                if monotonic() >= next_flush:
                    self.flush()
                    next_flush = monotonic() + self._flush_interval
                else:
                    with self._flush_lock:
                        self._fold()
            except Exception:  # whatever happens, the thread must outlive it
                log.exception("usage flush failed; trying again at the next one")

    def _fold(self) -> None:
        """Move the inbox into hourly buckets (at most what is there now: producers never starve us)."""
        inbox, buckets = self._inbox, self._buckets
        for _ in range(len(inbox)):
            key = inbox.popleft()
            if key in buckets:
                buckets[key] += 1
            elif self._held < self._max_buckets:
                buckets[key] = 1
                self._held += 1
            else:
                self.dropped += 1
                self._unreported_drops += 1

    def _cut_batches(self) -> None:
        rows = list(self._buckets.items())
        self._buckets = {}
        for start in range(0, len(rows), MAX_BATCH_ROWS):
            self._outbox.append(_Batch.new(rows[start : start + MAX_BATCH_ROWS], self._unreported_drops))
            self._unreported_drops = 0

    def _deliver(self, batch: _Batch) -> bool:
        """Send the batch at the head of the outbox, retrying; False when it has to wait for later."""
        for attempt in range(self._attempts):
            if attempt:
                if self._stop.is_set():
                    return False  # stopping: one attempt only
                self._stop.wait(self._backoff.delay(attempt - 1))
                self._fold()
            try:
                response = self._client.request("POST", USAGE_PATH, payload=batch.payload())
            except PortalUnavailable as exc:
                log.warning("usage batch %s not delivered: %s", batch.batch_id, exc)
                continue
            if response.ok:
                self._outbox.popleft()
                self._held -= len(batch.rows)
                return True
            error = response.error()
            if isinstance(error, PortalRefused):
                if error.status == 400:  # bad data: sending it again would never work
                    self._reject(batch, error)
                    return True
                if error.status != 429:  # e.g. a revoked key: no point retrying right now
                    log.error(
                        "usage batch %s refused (%s); keeping it for the next flush", batch.batch_id, error
                    )
                    return False
            log.warning("usage batch %s not delivered: %s", batch.batch_id, error)
        return False

    def _reject(self, batch: _Batch, error: PortalRefused) -> None:
        """Drop a refused batch (the head of the outbox), keeping the rows the 400 did not name."""
        self._outbox.popleft()
        self._held -= len(batch.rows)
        self.rejected_batches += 1
        named = {int(match.group(1)) for field in error.fields if (match := _ROW_FIELD.match(field))}
        named &= set(range(len(batch.rows)))  # so that every round trip removes at least one row
        kept = [row for index, row in enumerate(batch.rows) if index not in named] if named else []
        refused = sum(count for _, count in batch.rows) - sum(count for _, count in kept)
        self.rejected_requests += refused
        if kept:
            retry = _Batch.new(kept, batch.dropped)
            self._outbox.appendleft(retry)
            self._held += len(kept)
            log.error(
                "usage batch %s refused (%s): discarded %d rows (%d requests), sending the other %d as %s",
                batch.batch_id,
                error,
                len(batch.rows) - len(kept),
                refused,
                len(kept),
                retry.batch_id,
            )
        else:
            self._unreported_drops += batch.dropped  # the drops it carried are still to be reported
            log.error(
                "usage batch %s refused (%s): discarded all %d rows (%d requests)",
                batch.batch_id,
                error,
                len(batch.rows),
                refused,
            )


@dataclass(frozen=True, slots=True)
class _Batch:
    batch_id: str
    rows: tuple[tuple[_Key, int], ...]
    dropped: int

    @classmethod
    def new(cls, rows: Iterable[tuple[_Key, int]], dropped: int) -> _Batch:
        return cls(uuid.uuid4().hex, tuple(rows), dropped)

    def payload(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "dropped": self.dropped,
            "rows": [
                {"org": org, "alias": alias, "snapshot": snapshot, "hour": _hour(hour), "requests": requests}
                for (org, alias, snapshot, hour), requests in self.rows
            ],
        }


def _hour(hours_since_epoch: int) -> str:
    return dt.datetime.fromtimestamp(hours_since_epoch * 3600, dt.UTC).strftime("%Y-%m-%dT%H:00:00Z")
