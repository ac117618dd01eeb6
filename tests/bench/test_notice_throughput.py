"""Outbox throughput: plan and send 10,000 notices for 2,000 organisations through a real Celery
worker to an SMTP sink running in its own process, beside 10,000 no-op Celery tasks on the same
worker in the same run (target: notices at >= 0.5x the no-op rate).

Run with Redis (and preferably PostgreSQL):
  TEST_DB_NAME=test_notices DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
  CELERY_BROKER_URL=redis://127.0.0.1:6379/2 .venv/bin/python -m pytest tests/bench/test_notice_throughput.py -s
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from contracts.models import Membership, Organization, Pin, Role
from notifications import services
from notifications.models import Notice, NoticeStatus
from tests import factories as f
from tests.notifications.conftest import deprecate
from tests.notifications.test_worker_redis import queue_idle, wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"),
    reason="needs a Redis broker for the real Celery worker (CELERY_BROKER_URL=redis://…)",
)

ORGS = int(os.environ.get("BENCH_NOTICE_ORGS", 2000))
SNAPSHOTS_PER_ORG = 5  # 2,000 organisations x 5 deprecated pins = 10,000 notices


def build_world() -> None:
    family = f.FamilyFactory(slug="bench")
    replacement = f.SnapshotFactory(family=family, name="bench-new", released_at=f.days(-5))
    aliases = []
    for i in range(SNAPSHOTS_PER_ORG):
        old = f.SnapshotFactory(family=family, name=f"bench-old-{i}", released_at=f.days(-300))
        aliases.append((f.make_alias(name=f"bench-{i}", target=old, at=f.days(-299)), old))
        deprecate(old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=replacement)
    now = timezone.now()
    orgs = Organization.objects.bulk_create(
        [Organization(slug=f"bench{i}", name=f"Bench {i}") for i in range(ORGS)], batch_size=1000
    )
    users = get_user_model().objects.bulk_create(
        [
            get_user_model()(username=f"bench{i}-admin", email=f"bench{i}-admin@example.com")
            for i in range(ORGS)
        ],
        batch_size=1000,
    )
    Membership.objects.bulk_create(
        [Membership(organization=o, user=u, role=Role.ADMIN) for o, u in zip(orgs, users, strict=True)],
        batch_size=1000,
    )
    Pin.objects.bulk_create(
        [
            Pin(organization=o, alias=a, snapshot=s, created_at=now, updated_at=now)
            for o in orgs
            for a, s in aliases
        ],
        batch_size=2000,
    )


def received(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_notice_throughput_against_noop_tasks(bench_workers):
    from notifications.tasks import enqueue_batches, noop

    workers = bench_workers

    build_world()
    total = ORGS * SNAPSHOTS_PER_ORG
    from portal.celery import app

    # Anchor: 10,000 no-op tasks, queued before the worker starts, so what is timed is the worker
    # taking them (from the first taken to the queue drained), not one producer publishing them.
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:  # one connection for all publishes, as a dispatcher task does
        for _ in range(total):
            noop.apply_async(queue=workers.queue, producer=producer)
    enqueued_noop = time.perf_counter() - started
    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        assert client.llen(workers.queue) == total
        workers.start(
            "bench",
            concurrency=2,
            CONN_MAX_AGE="600",
            LOG_LEVEL="WARNING",
            EMAIL_BACKEND="notifications.mail.SmtpEmailBackend",
        )
        wait_until(
            lambda: client.llen(workers.queue) < total,
            timeout=300,
            what="worker start",
            workers=workers,
            every=0.01,
        )
    started = time.perf_counter()
    wait_until(
        lambda: queue_idle(workers.queue), timeout=1800, what="no-op tasks", workers=workers, every=0.05
    )
    noop_seconds = time.perf_counter() - started

    started = time.perf_counter()
    planned = services.notices_plan()
    plan_seconds = time.perf_counter() - started
    assert planned == total
    app.conf.task_default_queue = workers.queue  # enqueue_batches publishes to the default queue
    enqueue_batches(services.notices_dispatch_claim(limit=total))
    enqueued_notices = time.perf_counter() - started
    wait_until(
        lambda: Notice.objects.filter(status=NoticeStatus.SENT).count() == total,
        timeout=3600,
        what="all notices sent",
        workers=workers,
        every=0.5,
    )
    notice_seconds = time.perf_counter() - started
    send_seconds = notice_seconds - plan_seconds

    ids = received(workers.received)
    assert len(ids) == total and len(set(ids)) == total  # every notice once, none twice
    assert set(Notice.objects.values_list("attempts", flat=True)) == {1}
    batch = settings.NOTICE_BATCH_SIZE
    print(
        f"\n[bench] worker: 2 processes, prefetch 1; SMTP sink in its own process; NOTICE_BATCH_SIZE={batch}"
        f"\n[bench] {total} no-op tasks, queued first ({enqueued_noop:.1f} s), taken by the worker in"
        f" {noop_seconds:.1f} s ({total / noop_seconds:.0f}/s)"
        f"\n[bench] {total} notices for {ORGS} organisations: planned {plan_seconds:.1f} s, claimed + enqueued"
        f" {enqueued_notices - plan_seconds:.1f} s, sent over SMTP and recorded: {send_seconds:.1f} s"
        f" ({total / send_seconds:.0f}/s; {total / notice_seconds:.0f}/s with planning)"
        f"\n[bench] rate notices / no-op: {noop_seconds / send_seconds:.2f}x sending"
        f" ({noop_seconds / notice_seconds:.2f}x with planning; target >= 0.5x)"
    )
