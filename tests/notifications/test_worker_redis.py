"""A real Celery worker on Redis: exactly-once delivery with two workers, and a worker killed
mid-send whose notice is taken over by another worker and delivered once, never lost.

Runs in the CI services run (CELERY_BROKER_URL=redis://…); each test uses its own queue so other
workers on the same broker never see its tasks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from contracts.models import Role
from notifications import services
from notifications.models import Notice, NoticeStatus
from tests import factories as f
from tests.notifications.conftest import deprecate

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"),
        reason="needs a Redis broker and a real Celery worker: set CELERY_BROKER_URL=redis://… (CI services run)",
    ),
]

BASE_DIR = Path(settings.BASE_DIR)


def database_url() -> str:
    """The test database pytest-django created, as a URL the worker subprocess can use."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Workers:
    def __init__(self, *, queue: str, smtp_port: int, tmp_path: Path) -> None:
        self.queue = queue
        self.smtp_port = smtp_port
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *, concurrency: int = 1, **extra_env: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp_port),
            "WEBHOOKS_ALLOW_PRIVATE": "true",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            **extra_env,
        }
        log = open(self.tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                self.queue,
                "-n",
                f"{name}-{self.queue}@%h",
                f"--concurrency={concurrency}",
                "--prefetch-multiplier=1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                extra_env.pop("LOG_LEVEL", "INFO"),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children: nothing gets to acknowledge or clean up."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp_path.glob("*.log"))


@pytest.fixture
def workers(transactional_db, smtp_sink, tmp_path):
    from portal.celery import app

    app.conf.task_always_eager = False
    sink, port = smtp_sink
    pool = Workers(queue=f"notices-test-{uuid.uuid4().hex[:8]}", smtp_port=port, tmp_path=tmp_path)
    pool.sink = sink
    try:
        yield pool
    finally:
        pool.stop_all()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(pool.queue)
            drop_orphans(conn.default_channel.client, pool.queue)
        connection.close()


def drop_orphans(client, queue: str) -> None:
    """Remove this test's unacknowledged messages (of killed workers) so Redis does not restore them later."""
    for tag in _unacked_tags(client, queue):
        client.hdel("unacked", tag)
        client.zrem("unacked_index", tag)


def send(task, *args, queue: str) -> None:
    task.apply_async(args=list(args), queue=queue)


def wait_until(
    condition, *, timeout: float, what: str, workers: Workers, every: float = 0.2, tick=None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if tick:
            tick()
        time.sleep(every)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n--- worker logs ---\n{workers.logs()}")


def _unacked_tags(client, queue: str) -> list:
    """Delivery tags of messages of `queue` taken by a worker and not yet acknowledged."""
    import json

    tags = []
    for tag, raw in client.hgetall("unacked").items():
        try:
            if json.loads(raw)[2] == queue:
                tags.append(tag)
        except (ValueError, IndexError, TypeError):
            continue
    return tags


def unacked(queue: str) -> int:
    from portal.celery import app

    with app.connection_for_write() as conn:
        return len(_unacked_tags(conn.default_channel.client, queue))


def queue_idle(queue: str, *, orphans: int = 0) -> bool:
    """Nothing waiting in the queue and nothing in flight (beyond `orphans` a killed worker left)."""
    from portal.celery import app

    with app.connection_for_write() as conn:
        client = conn.default_channel.client
        return client.llen(queue) == 0 and len(_unacked_tags(client, queue)) <= orphans


def make_orgs(n: int):
    family = f.FamilyFactory(slug="wk")
    old = f.SnapshotFactory(family=family, name="wk-old", released_at=f.days(-300))
    new = f.SnapshotFactory(family=family, name="wk-new", released_at=f.days(-10))
    alias = f.make_alias(name="wk-chat", target=old, at=f.days(-299))
    for i in range(n):
        org = f.OrganizationFactory(slug=f"wk{i}")
        f.MembershipFactory(organization=org, role=Role.ADMIN, user__username=f"wk{i}-admin")
        f.make_pin(org=org, alias=alias, snapshot=old, at=f.days(-200))
    deprecate(old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=new)


def test_two_workers_and_duplicate_tasks_deliver_every_notice_exactly_once(workers):
    from notifications.tasks import dispatch_notices, send_notice

    make_orgs(20)
    assert services.notices_plan() == 20
    ids = list(Notice.objects.values_list("id", flat=True))
    workers.start("w1")
    workers.start("w2")
    for notice_id in ids:  # every notice enqueued three times over
        send(send_notice, notice_id, queue=workers.queue)
        send(send_notice, notice_id, queue=workers.queue)
    send(dispatch_notices, queue=workers.queue)
    wait_until(
        lambda: Notice.objects.filter(status=NoticeStatus.SENT).count() == 20 and queue_idle(workers.queue),
        timeout=120,
        what="all notices sent and the queue drained",
        workers=workers,
    )
    message_ids = [str(m["Message-ID"]) for m in workers.sink.messages]
    assert len(message_ids) == 20 and len(set(message_ids)) == 20
    assert sorted(str(m["To"]) for m in workers.sink.messages) == sorted(
        f"wk{i}-admin@example.com" for i in range(20)
    )
    assert set(Notice.objects.values_list("attempts", flat=True)) == {1}


def test_a_worker_killed_mid_send_leaves_the_notice_to_another_worker_which_delivers_it_once(workers):
    from notifications.tasks import dispatch_notices, send_notice

    make_orgs(1)
    services.notices_plan()
    notice = Notice.objects.get()
    doomed = workers.start("doomed", NOTICE_TEST_BLOCK_AFTER_CLAIM_SECONDS="600", NOTICE_LEASE_SECONDS="4")
    send(send_notice, notice.pk, queue=workers.queue)
    wait_until(
        lambda: Notice.objects.filter(pk=notice.pk, status=NoticeStatus.SENDING).exists(),
        timeout=90,
        what="the doomed worker to claim the notice",
        workers=workers,
    )
    workers.kill(doomed)
    # Its message stays unacknowledged in Redis until the visibility timeout: the DB lease recovers sooner.
    orphans = unacked(workers.queue)
    assert orphans >= 1
    assert workers.sink.messages == []
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENDING  # the claim is orphaned, not lost
    workers.start("rescuer", NOTICE_LEASE_SECONDS="4")
    last_tick = [0.0]

    def beat() -> None:  # what celery beat does every minute, here every second
        if time.monotonic() - last_tick[0] >= 1:
            last_tick[0] = time.monotonic()
            send(dispatch_notices, queue=workers.queue)

    wait_until(
        lambda: Notice.objects.filter(pk=notice.pk, status=NoticeStatus.SENT).exists(),
        timeout=90,
        what="the rescuer to deliver the orphaned notice",
        workers=workers,
        tick=beat,
    )
    wait_until(
        lambda: queue_idle(workers.queue, orphans=orphans),
        timeout=60,
        what="the queue to drain",
        workers=workers,
    )
    notice.refresh_from_db()
    assert notice.attempts == 2 and "doomed" not in notice.claimed_by
    assert [str(m["To"]) for m in workers.sink.messages] == ["wk0-admin@example.com"]


def test_a_worker_sent_sigterm_mid_task_finishes_the_task_acknowledges_it_and_exits(workers):
    from notifications.tasks import send_notice

    make_orgs(1)
    services.notices_plan()
    notice = Notice.objects.get()
    worker = workers.start("terminated", NOTICE_TEST_BLOCK_AFTER_CLAIM_SECONDS="3")
    send(send_notice, notice.pk, queue=workers.queue)
    wait_until(
        lambda: Notice.objects.filter(pk=notice.pk, status=NoticeStatus.SENDING).exists(),
        timeout=90,
        what="the worker to claim the notice",
        workers=workers,
    )
    # What a deploy or a scale-down sends: warm shutdown, no new work, the task in hand completes.
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=90) == 0, workers.logs()
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT and notice.attempts == 1 and notice.lease_until is None
    assert [str(m["To"]) for m in workers.sink.messages] == ["wk0-admin@example.com"]
    assert queue_idle(workers.queue)  # acknowledged: nothing left for Redis to redeliver


def test_the_request_id_of_a_request_follows_the_task_it_queues_into_the_worker_log(
    workers, webhook_receiver, client
):
    import json

    from portal.celery import app

    org = f.OrganizationFactory(slug="rid")
    key = f.make_key(org)
    endpoint = services.webhook_endpoint_create(
        org=org, url=webhook_receiver.url, events=["migration.proposed"]
    )
    workers.start("logger", LOG_FORMAT="json")
    app.conf.task_default_queue = workers.queue
    try:
        response = client.post(
            f"/api/v1/webhooks/{endpoint.pk}/test/",
            data={},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
            HTTP_X_REQUEST_ID="req-7f3a-follow-me",
        )
    finally:
        app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert response.status_code in (200, 201, 202), response.content
    assert response["X-Request-ID"] == "req-7f3a-follow-me"
    wait_until(
        lambda: len(webhook_receiver.requests) == 1 and queue_idle(workers.queue),
        timeout=90,
        what="the worker to deliver the test webhook",
        workers=workers,
    )
    lines = [json.loads(line) for line in workers.logs().splitlines() if line.startswith("{")]
    task_lines = [line for line in lines if line.get("request_id") == "req-7f3a-follow-me"]
    assert {line["event"] for line in task_lines} >= {"task_started", "task_succeeded"}, lines[-10:]
    assert all(line.get("task_id") for line in task_lines)
