"""UsageReporter: hourly buckets, batches, retries with the same batch id, bounded memory, 400s."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import time_machine

from tests.gateway.conftest import USAGE
from tests.gateway.helpers import wait_until

SERVED = ("acme", "v1-chat", "chat-2025-09-29")


def posts(portal):
    return portal.requests_to(USAGE, "POST")


def test_counts_are_bucketed_per_utc_hour(portal, make_reporter):
    reporter = make_reporter()
    paris = dt.timezone(dt.timedelta(hours=1))
    with time_machine.travel(dt.datetime(2026, 12, 2, 9, 59, 59, tzinfo=paris), tick=False):
        reporter.count(*SERVED)
        reporter.count(*SERVED)
        reporter.count("acme", "chat-preview", "chat-2027-01-01")
    with time_machine.travel(dt.datetime(2026, 12, 2, 9, 0, 0, tzinfo=dt.UTC), tick=False):
        reporter.count(*SERVED)

    assert reporter.flush() is True

    [batch] = portal.usage_batches.values()
    assert batch["dropped"] == 0
    assert len(batch["batch_id"]) == 32
    assert sorted(batch["rows"], key=lambda row: (row["hour"], row["alias"])) == [
        {
            "org": "acme",
            "alias": "chat-preview",
            "snapshot": "chat-2027-01-01",
            "hour": "2026-12-02T08:00:00Z",
            "requests": 1,
        },
        {
            "org": "acme",
            "alias": "v1-chat",
            "snapshot": "chat-2025-09-29",
            "hour": "2026-12-02T08:00:00Z",
            "requests": 2,
        },
        {
            "org": "acme",
            "alias": "v1-chat",
            "snapshot": "chat-2025-09-29",
            "hour": "2026-12-02T09:00:00Z",
            "requests": 1,
        },
    ]
    assert reporter.pending_buckets == 0


def test_nothing_counted_sends_nothing(portal, make_reporter):
    assert make_reporter().flush() is True
    assert posts(portal) == []


def test_a_batch_is_retried_with_the_same_id_after_a_503(portal, make_reporter):
    reporter = make_reporter()
    reporter.count(*SERVED)
    portal.script(USAGE, 503, None)

    assert reporter.flush() is True

    first, retry = posts(portal)
    assert (first.status, retry.status) == (503, 200)
    assert first.body == retry.body
    assert [batch["rows"][0]["requests"] for batch in portal.usage_batches.values()] == [1]


def test_a_batch_waits_for_the_next_flush_when_the_portal_stays_down(portal, make_reporter):
    reporter = make_reporter(attempts=2)
    reporter.count(*SERVED)
    portal.stop()

    assert reporter.flush() is False
    assert reporter.pending_buckets == 1

    portal.start()
    reporter.count(*SERVED)  # counted meanwhile: a new batch, after the waiting one
    assert reporter.flush() is True

    batch_ids = [exchange.body["batch_id"] for exchange in posts(portal)]
    assert len(batch_ids) == 2 and batch_ids[0] != batch_ids[1]  # the 2 attempts never reached the portal
    assert [row["requests"] for row in portal.usage_rows()] == [1, 1]
    assert reporter.pending_buckets == 0


def test_a_replayed_batch_counts_once(portal, make_reporter):
    reporter = make_reporter()
    reporter.count(*SERVED)
    portal.script(USAGE, 503, None)
    portal.script(USAGE, 503, None)
    reporter.flush()

    ids = {exchange.body["batch_id"] for exchange in posts(portal)}
    assert len(ids) == 1 and len(posts(portal)) == 3
    assert len(portal.usage_batches) == 1


def test_beyond_max_buckets_requests_are_dropped_and_reported(portal, make_reporter):
    reporter = make_reporter(max_buckets=2)
    reporter.count("acme", "v1-chat", "chat-2025-09-29")
    reporter.count("acme", "chat-preview", "chat-2027-01-01")
    for _ in range(3):
        reporter.count("umbrella", "v1-chat", "chat-2026-03-02")  # a third bucket: no room
    reporter.count("acme", "v1-chat", "chat-2025-09-29")  # an existing bucket still counts

    assert reporter.flush() is True

    assert reporter.dropped == 3
    [batch] = portal.usage_batches.values()
    assert batch["dropped"] == 3
    assert sorted(row["requests"] for row in batch["rows"]) == [1, 2]

    reporter.count("umbrella", "v1-chat", "chat-2026-03-02")  # room again once delivered
    reporter.flush()
    assert [batch["dropped"] for batch in portal.usage_batches.values()] == [3, 0]
    assert reporter.dropped == 3


def test_batches_waiting_for_a_retry_count_against_the_bound(portal, make_reporter):
    reporter = make_reporter(max_buckets=1, attempts=1)
    reporter.count(*SERVED)
    portal.script(USAGE, 503, None)
    assert reporter.flush() is False

    reporter.count("umbrella", "v1-chat", "chat-2026-03-02")
    assert reporter.flush() is True

    assert reporter.dropped == 1
    assert [batch["dropped"] for batch in portal.usage_batches.values()] == [0]


@pytest.mark.parametrize("fields", [{}, {"dropped": "negative"}, {"rows[7].org": "no such row"}])
def test_a_400_naming_no_row_of_the_batch_discards_it(portal, make_reporter, fields):
    reporter = make_reporter()
    reporter.count(*SERVED)
    reporter.count(*SERVED)
    portal.script(USAGE, 400, {"error": {"code": "invalid", "message": "bad batch", "fields": fields}})

    assert reporter.flush() is True

    assert len(posts(portal)) == 1  # not retried
    assert (reporter.rejected_batches, reporter.rejected_requests) == (1, 2)
    assert reporter.pending_buckets == 0
    assert reporter.flush() is True
    assert len(posts(portal)) == 1


def test_drops_carried_by_a_discarded_batch_are_reported_by_the_next(portal, make_reporter):
    reporter = make_reporter(max_buckets=1)
    reporter.count(*SERVED)
    reporter.count("umbrella", "v1-chat", "chat-2026-03-02")  # dropped
    portal.script(USAGE, 400, {"error": {"code": "invalid", "message": "bad batch", "fields": {}}})
    reporter.flush()

    reporter.count(*SERVED)
    reporter.flush()

    refused, accepted = (exchange.body for exchange in posts(portal))
    assert (refused["dropped"], accepted["dropped"]) == (1, 1)


def test_a_400_naming_rows_discards_those_and_sends_the_rest(portal, make_reporter):
    reporter = make_reporter()
    reporter.count(*SERVED)
    reporter.count("acme", "v1-chat", "chat-unpublished-meanwhile")
    reporter.count("acme", "v1-chat", "chat-unpublished-meanwhile")
    reporter.count("umbrella", "v1-chat", "chat-2026-03-02")

    assert reporter.flush() is True

    refused, accepted = posts(portal)
    assert refused.status == 400 and accepted.status == 200
    assert refused.body["batch_id"] != accepted.body["batch_id"]
    assert {row["snapshot"] for row in accepted.body["rows"]} == {"chat-2025-09-29", "chat-2026-03-02"}
    assert (reporter.rejected_batches, reporter.rejected_requests) == (1, 2)


def test_batches_hold_at_most_5000_rows(portal, make_reporter):
    reporter = make_reporter()
    portal.map["pins"].update({f"org-{n}": {} for n in range(5001)})
    for n in range(5001):
        reporter.count(f"org-{n}", "v1-chat", "chat-2026-03-02")

    assert reporter.flush() is True

    assert sorted(len(batch["rows"]) for batch in portal.usage_batches.values()) == [1, 5000]


def test_counting_while_the_flusher_runs_loses_nothing(portal, make_reporter):
    reporter = make_reporter(flush_interval=0.01)
    reporter.start()
    counted = [0] * 4
    deadline = time.monotonic() + 10

    def serve(index: int) -> None:
        # Keep counting until several flushes have happened meanwhile.
        while len(portal.usage_batches) < 3 and time.monotonic() < deadline:
            reporter.count(*SERVED)
            counted[index] += 1

    threads = [threading.Thread(target=serve, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reporter.stop()

    assert len(portal.usage_batches) >= 3
    assert sum(row["requests"] for row in portal.usage_rows()) == sum(counted)


def test_the_background_flusher_sends_and_stop_flushes_once_more(portal, make_reporter):
    reporter = make_reporter(flush_interval=0.05)
    reporter.start()
    reporter.count(*SERVED)
    wait_until(lambda: portal.usage_rows(), what="a periodic flush")

    reporter.count(*SERVED)
    reporter.stop()  # well before the next periodic flush would matter

    assert [row["requests"] for row in portal.usage_rows()] == [1, 1]


def test_stop_does_not_retry(portal, make_reporter):
    reporter = make_reporter(flush_interval=3600)
    reporter.start()
    reporter.count(*SERVED)
    portal.script(USAGE, 503, None)

    assert reporter.stop() is False

    assert len(posts(portal)) == 1
    assert reporter.pending_buckets == 1
