"""Fixtures of the benchmarks: an SMTP sink in its own process, and real Celery workers on Redis
that deliver to it."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.db import connection

from tests.notifications.conftest import free_port
from tests.notifications.test_worker_redis import Workers, drop_orphans


@pytest.fixture
def sink_process(tmp_path):
    """The SMTP sink in a separate process; yields (port, file of received Message-IDs)."""
    port, out = free_port(), tmp_path / "received.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.smtp_sink", str(port), str(out)],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout.readline().strip() == b"ready"
    try:
        yield port, out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def bench_workers(transactional_db, sink_process, tmp_path):
    from portal.celery import app

    app.conf.task_always_eager = False
    port, out = sink_process
    pool = Workers(queue=f"notices-bench-{uuid.uuid4().hex[:8]}", smtp_port=port, tmp_path=tmp_path)
    pool.received = out
    try:
        yield pool
    finally:
        pool.stop_all()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(pool.queue)
            drop_orphans(conn.default_channel.client, pool.queue)
        connection.close()
