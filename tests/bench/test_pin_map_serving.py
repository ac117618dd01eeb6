"""Benchmark: serving gateways from the documented server mode, side by side in one run.

The portal runs as gunicorn with uvicorn workers (ASGI: a waiting long-poll is a coroutine, holding no
thread and no database connection) on PostgreSQL, woken by LISTEN/NOTIFY. Prints:

- a 304 of the pin map beside the do-nothing endpoint (/healthz) under wrk (target: the 304 costs at
  most 1.5x the do-nothing endpoint);
- a pin change reaching 50 long-polling `vcp_gateway.PinMap` clients (target p99 < 1 s);
- the rest of the portal while those gateways wait: /healthz latency with and without 200 waiting
  long-polls, and the same under plain gunicorn sync workers, where waiting gateways take every worker.

Needs PostgreSQL (BENCH on DATABASE_URL=postgres://…, TEST_DB_NAME=…) and wrk.
Run: `.venv/bin/python -m pytest tests/bench/test_pin_map_serving.py -s -p no:cacheprovider`
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from vcp_gateway import PinMap

from contracts.pins import services as pin_services
from tests import factories as f
from tests.bench.test_resolve_throughput import parse_wrk
from tests.contracts.gateway.conftest import LOOPBACK, wait_for_http
from tests.notifications.conftest import free_port
from tests.notifications.test_worker_redis import database_url

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "20"))
WAITERS = int(os.environ.get("BENCH_WAITERS", "200"))
DURATION = os.environ.get("BENCH_SECONDS", "5")

pytestmark = [
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install wrk)"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the documented server mode runs on PostgreSQL (LISTEN/NOTIFY): set DATABASE_URL=postgres://…",
    ),
]


class Server:
    def __init__(self, tmp_path: Path, *, asgi: bool, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_path = self.log_path = tmp_path / f"server-{self.port}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CACHE_URL": "locmemcache://",
            "DEBUG": "0",
            "API_KEY_RATE": "100000000/min",
            "PIN_MAP_WAKEUP": "postgres",
            "PIN_MAP_POLL_SECONDS": "30",  # only NOTIFY can wake a waiter within the measurement
            "CONN_MAX_AGE": "60",
        }
        env.pop("REDIS_URL", None)
        worker = ["-k", "uvicorn_worker.UvicornWorker"] if asgi else ["-k", "sync"]
        application = "portal.asgi:application" if asgi else "portal.wsgi"
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                application,
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                str(workers),
                *worker,
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=open(log_path, "wb"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{self.url}/healthz", process=self.process, log_path=log_path)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def wrk(url: str, *headers: str, connections: int = 16) -> dict[str, float]:
    head = [item for header in headers for item in ("-H", header)]
    subprocess.run(["wrk", "-t2", "-c4", "-d1s", *head, url], check=True, capture_output=True)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{DURATION}s", "--latency", *head, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(out)


def healthz_latency(url: str, samples: int = 40) -> list[float]:
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        LOOPBACK.open(f"{url}/healthz", timeout=60).read()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def hold_long_polls(url: str, key: str, revision: int, count: int, wait: int) -> list[threading.Thread]:
    def poll():
        request = __import__("urllib.request").request.Request(
            f"{url}/api/v1/gateway/pin-map/?since={revision}&wait={wait}",
            headers={"Authorization": f"Bearer {key}"},
        )
        with contextlib.suppress(OSError):
            LOOPBACK.open(request, timeout=wait + 30).read()

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_serving_gateways(transactional_db, tmp_path):
    family = f.FamilyFactory(slug="chat")
    a = f.SnapshotFactory(family=family, name="chat-a", released_at=f.days(-200))
    b = f.SnapshotFactory(family=family, name="chat-b", released_at=f.days(-200))
    alias = f.make_alias(name="v1-chat", target=a)
    orgs = [f.OrganizationFactory(slug=f"org-{n:03d}") for n in range(50)]
    for org in orgs:
        f.make_pin(org=org, alias=alias, snapshot=a)
    _gateway, key = f.make_gateway("bench")
    auth = f"Authorization: Bearer {key}"
    connection.close()

    server = Server(tmp_path, asgi=True)
    report = [
        f"\ngunicorn 2 uvicorn workers (ASGI) on PostgreSQL, LISTEN/NOTIFY wake-ups, wrk 16 connections {DURATION}s"
    ]
    try:
        pin_map_url = f"{server.url}/api/v1/gateway/pin-map/"
        etag = LOOPBACK.open(
            __import__("urllib.request").request.Request(
                pin_map_url, headers={"Authorization": f"Bearer {key}"}
            )
        ).headers["ETag"]
        base = wrk(f"{server.url}/healthz")
        not_modified = wrk(pin_map_url, auth, f"If-None-Match: {etag}")
        full = wrk(pin_map_url, auth)
        for label, r in (
            ("do-nothing /healthz", base),
            ("pin-map 304 (If-None-Match)", not_modified),
            ("pin-map 200 full (cached)", full),
        ):
            report.append(
                f"  {label:30s} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  p99 {r['p99']:6.2f} ms  errors {r['errors']}"
            )
        report.append(
            f"  cost of a 304 / do-nothing: {base['rps'] / not_modified['rps']:.2f}x (target <= 1.5x)"
        )

        # A pin change reaching CLIENTS long-polling library clients.
        clients = [PinMap(server.url, key, wait=30) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 60
        while not all(c.ready for c in clients):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        delays: list[float] = []
        org = orgs[0]
        for n in range(CHANGES):
            time.sleep(0.5)  # every client back in its long-poll
            target = b if n % 2 == 0 else a
            pin_services.pin_set(org=org, alias=alias, snapshot=target)
            committed = time.perf_counter()
            pending = set(range(CLIENTS))
            while pending:
                now = time.perf_counter()
                assert now - committed < 10, server.log_path.read_text()[-3000:]
                for index in list(pending):
                    if clients[index].resolve(org.slug, "v1-chat").snapshot == target.name:
                        delays.append(now - committed)
                        pending.discard(index)
                time.sleep(0.0005)
        for client in clients:
            client.stop()
        report.append(
            f"  pin change -> {CLIENTS} long-polling PinMap clients, {CHANGES} changes: "
            f"p50 {statistics.median(delays) * 1000:.0f} ms  p99 {p(delays, 0.99) * 1000:.0f} ms  "
            f"max {max(delays) * 1000:.0f} ms (target p99 < 1000 ms)"
        )
        connection.close()

        # The rest of the portal while gateways wait.
        from contracts.gateway.changelog import pin_map_revision

        revision = pin_map_revision()
        connection.close()
        idle = healthz_latency(server.url)
        threads = hold_long_polls(server.url, key, revision, WAITERS, wait=20)
        time.sleep(2)
        busy = healthz_latency(server.url)
        report.append(
            f"  /healthz one at a time: idle p50 {statistics.median(idle):.1f} ms p99 {p(idle, 0.99):.1f} ms; "
            f"with {WAITERS} waiting long-polls p50 {statistics.median(busy):.1f} ms p99 {p(busy, 0.99):.1f} ms"
        )
    finally:
        server.stop()
    for thread in threads:
        thread.join(timeout=1)

    # The same with plain WSGI sync workers: each waiting long-poll holds a whole worker.
    sync_server = Server(tmp_path, asgi=False)
    try:
        threads = hold_long_polls(sync_server.url, key, revision, 4, wait=8)
        time.sleep(1)
        started = time.perf_counter()
        LOOPBACK.open(f"{sync_server.url}/healthz", timeout=60).read()
        starved = (time.perf_counter() - started) * 1000
        report.append(
            f"  for contrast, gunicorn 2 sync workers with 4 waiting long-polls (wait=8 s): one /healthz took {starved:.0f} ms"
        )
    finally:
        sync_server.stop()
    print("\n".join(report))
    assert base["errors"] == 0 and not_modified["errors"] == 0
