"""Celery tasks of the outbox. Due dates live in the database; beat runs `plan_notices` every few
minutes, which inserts what is due and enqueues one `send_notices` per batch of due rows
(NOTICE_BATCH_SIZE). Nothing is ever scheduled as a far-future ETA (a Redis broker would redeliver
it after the visibility timeout): a notice that failed is pending again with a later due date, and
the next dispatch picks it up.

Timing relation (asserted in tests/notifications/test_tasks.py):
    task time limit  <  NOTICE_LEASE_SECONDS  <  broker visibility timeout
    every retry countdown (≤ NOTICE_RETRY_MAX_SECONDS)  <  broker visibility timeout
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter

from celery import shared_task
from django.conf import settings

from notifications.models import DeliveryStatus, NoticeStatus

log = logging.getLogger(__name__)

SEND_TIME_LIMIT = 120
PLAN_TIME_LIMIT = 600


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _block_after_claim() -> None:
    """Test-only: hold the claim so a test can kill this worker mid-send (off unless set)."""
    seconds = float(getattr(settings, "NOTICE_TEST_BLOCK_AFTER_CLAIM_SECONDS", 0) or 0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


@shared_task(time_limit=PLAN_TIME_LIMIT, soft_time_limit=PLAN_TIME_LIMIT - 30)
def plan_notices() -> dict[str, int]:
    """The beat entry: insert due notices, escalate overdue acknowledgements, enqueue what is due."""
    planned = _services().notices_plan()
    escalated = _services().notices_escalate()
    enqueued = dispatch_due()
    return {"planned": planned, "escalated": escalated, "enqueued": enqueued}


def enqueue_batches(ids: list[int]) -> int:
    """One `send_notices` task per NOTICE_BATCH_SIZE ids, published over one broker connection."""
    size = max(int(getattr(settings, "NOTICE_BATCH_SIZE", 200)), 1)
    batches = [ids[start : start + size] for start in range(0, len(ids), size)]
    if send_notices.app.conf.task_always_eager:
        for batch in batches:
            send_notices.delay(batch)
        return len(ids)
    with send_notices.app.producer_or_acquire() as producer:
        for batch in batches:
            send_notices.apply_async(args=[batch], producer=producer)
    return len(ids)


def dispatch_due() -> int:
    return enqueue_batches(_services().notices_dispatch_claim())


@shared_task(time_limit=PLAN_TIME_LIMIT, soft_time_limit=PLAN_TIME_LIMIT - 30)
def dispatch_notices() -> int:
    """Enqueue every due notice, including claims whose lease ran out (a crashed worker's)."""
    return dispatch_due()


def _send(notice_ids: list[int]) -> list:
    notices = _services().notices_claim(notice_ids=notice_ids, worker=_worker_name())
    if not notices:
        return []
    _block_after_claim()
    outcomes = _services().notices_deliver(notices=notices)
    _services().notices_record(outcomes=outcomes)
    for outcome in outcomes:
        if outcome.error:
            log.warning(
                "notice %s attempt %s: %s (%s)",
                outcome.notice.pk,
                outcome.notice.attempts,
                outcome.error,
                "failed for good" if outcome.status == NoticeStatus.FAILED else "retried later",
            )
    return outcomes


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=SEND_TIME_LIMIT,
    soft_time_limit=SEND_TIME_LIMIT - 20,
)
def send_notices(notice_ids: list[int]) -> dict[str, int]:
    """Claim a batch, deliver it over one connection, record every outcome in one transaction.
    Notices another copy of this task (or another worker) holds are left to it."""
    return dict(Counter(outcome.status for outcome in _send(notice_ids)))


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=SEND_TIME_LIMIT,
    soft_time_limit=SEND_TIME_LIMIT - 20,
)
def send_notice(self, notice_id: int) -> str:
    """One notice (a batch of one). A second copy of this task finds the claim taken and does nothing."""
    outcomes = _send([notice_id])
    if not outcomes:
        return "not-claimed"
    (outcome,) = outcomes
    # A notice the send-time check postponed (#13) is pending again at its new date, with no retry.
    if outcome.status == NoticeStatus.PENDING and outcome.retry_in is not None:
        if getattr(self.request, "is_eager", False):
            return "retry-scheduled"
        raise self.retry(countdown=int(outcome.retry_in.total_seconds()))
    return outcome.status


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=SEND_TIME_LIMIT,
    soft_time_limit=SEND_TIME_LIMIT - 20,
)
def deliver_webhook(self, delivery_id: int) -> str:
    """One attempt; on failure a retry after an exponential backoff, until WEBHOOK_MAX_ATTEMPTS.
    One task per delivery: the connection is kept alive from one task to the next by the pool of this
    worker process (notifications/webhooks.py), not by batching deliveries into one task."""
    while True:
        delivery = _services().webhook_attempt(delivery_id=delivery_id)
        if delivery is None:
            return "nothing-to-do"
        if delivery.status != DeliveryStatus.PENDING:
            return delivery.status
        if not getattr(self.request, "is_eager", False):
            raise self.retry(countdown=_services().retry_countdown(attempt=delivery.attempts - 1))
        # In-process (tests, eager mode) there is no broker to wait on: attempt again at once.


@shared_task(acks_late=True)
def noop() -> None:
    """Does nothing: the baseline of the outbox benchmark (tests/bench/test_notice_throughput.py)."""


def _services():
    from notifications import services  # noqa: PLC0415 -- a task reaches its service late (services queue tasks)

    return services
