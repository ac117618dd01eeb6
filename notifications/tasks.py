"""Celery tasks of the outbox. Due dates live in the database; beat runs `plan_notices` every few
minutes, which inserts what is due and enqueues one `send_notice` per due row. Nothing is ever
scheduled as a far-future ETA (a Redis broker would redeliver it after the visibility timeout).

Timing relation (asserted in tests/notifications/test_tasks.py):
    task time limit  <  NOTICE_LEASE_SECONDS  <  broker visibility timeout
    every retry countdown (≤ NOTICE_RETRY_MAX_SECONDS)  <  broker visibility timeout
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time

from celery import shared_task
from django.conf import settings

from notifications.models import DeliveryStatus

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


def dispatch_due() -> int:
    ids = _services().notices_dispatch_claim()
    for notice_id in ids:
        send_notice.delay(notice_id)
    return len(ids)


@shared_task(time_limit=PLAN_TIME_LIMIT, soft_time_limit=PLAN_TIME_LIMIT - 30)
def dispatch_notices() -> int:
    """Enqueue every due notice, including claims whose lease ran out (a crashed worker's)."""
    return dispatch_due()


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=SEND_TIME_LIMIT,
    soft_time_limit=SEND_TIME_LIMIT - 20,
)
def send_notice(self, notice_id: int) -> str:
    """Claim, deliver, mark. A second copy of this task finds the claim taken and does nothing."""
    notice = _services().notice_claim(notice_id=notice_id, worker=_worker_name())
    if notice is None:
        return "not-claimed"
    _block_after_claim()
    try:
        status, sent_to = _services().notice_deliver(notice=notice)
    except Exception as exc:
        max_attempts = getattr(settings, "NOTICE_MAX_ATTEMPTS", 8)
        if notice.attempts >= max_attempts:
            _services().notice_release(notice=notice, error=repr(exc), retry_in=None)
            log.warning("notice %s failed for good after %s attempts: %r", notice_id, notice.attempts, exc)
            return "failed"
        countdown = _services().retry_countdown(attempt=notice.attempts - 1)
        _services().notice_release(notice=notice, error=repr(exc), retry_in=dt.timedelta(seconds=countdown))
        if getattr(self.request, "is_eager", False):
            return "retry-scheduled"
        raise self.retry(exc=exc, countdown=countdown) from exc
    _services().notice_mark_done(notice=notice, status=status, sent_to=sent_to)
    return status


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=SEND_TIME_LIMIT,
    soft_time_limit=SEND_TIME_LIMIT - 20,
)
def deliver_webhook(self, delivery_id: int) -> str:
    """One attempt; on failure a retry after an exponential backoff, until WEBHOOK_MAX_ATTEMPTS."""
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
