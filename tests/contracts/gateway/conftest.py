"""Fixtures of the data-plane tests: a gateway key beside the shared world, and the portal as a live
process (uvicorn over the test database) for the library and the demo gateway to talk to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests import factories as f
from tests.notifications.conftest import free_port
from tests.notifications.test_worker_redis import database_url


@pytest.fixture
def gateway(db):
    gateway, raw = f.make_gateway()
    gateway.raw_key = raw
    return gateway


# Never through a proxy from the environment: these requests go to 127.0.0.1 only.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LivePortal:
    """The portal as its own process (uvicorn, the documented server mode for gateways) over the test
    database: what a real gateway talks to. `url`, `stop()`; its log is in `log_path`."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"portal-{self.port}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url(),
            "CACHE_URL": "locmemcache://",
            "DEBUG": "0",
            "PIN_MAP_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        if "REDIS_URL" not in env:
            environment.pop("REDIS_URL", None)
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the process)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "portal.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_http(f"{self.url}/healthz", process=self.process, log_path=self.log_path)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_for_http(url: str, *, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    """Until `url` answers (any status): the process is up. Fails with its log if it died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"process exited with {process.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}"
            )
        try:
            LOOPBACK.open(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(
        f"{url} did not answer within {timeout} s:\n{log_path.read_text(errors='replace')[-4000:]}"
    )


def http_json(method: str, url: str, *, key: str, payload: Any = None) -> tuple[int, Any, Message]:
    """One JSON request over the network (loopback) to a live server."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"Bearer {key}"}
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with LOOPBACK.open(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"null"), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


@pytest.fixture
def live_portal(transactional_db, tmp_path):
    """Start the portal process lazily with extra environment: `live_portal(PIN_MAP_WAKEUP="postgres")`."""
    started: list[LivePortal] = []

    def start(**env: str) -> LivePortal:
        portal = LivePortal(tmp_path, **env)
        started.append(portal)
        return portal

    try:
        yield start
    finally:
        for portal in started:
            portal.stop()
        connection.close()
