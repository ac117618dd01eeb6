"""The demo gateway (`python -m vcp_gateway.demo`, what `make run` starts on :8001) as a process, end to
end against the portal as a process: a completion with a receipt, the receipt verifying at the portal,
the pin moved in the portal (a consent through the API), the next completion served by the new
snapshot within a second, the usage arriving, and the bug filed with the old receipt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings

from contracts.consent.services import migration_propose
from contracts.models import ContractTerms, UsageHour
from tests import factories as f
from tests.contracts.gateway.conftest import LOOPBACK, http_json, wait_for_http
from tests.notifications.conftest import free_port


@pytest.fixture
def demo_world(transactional_db):
    family = f.FamilyFactory(slug="chat")
    old = f.SnapshotFactory(family=family, name="chat-a", released_at=f.days(-100))
    new = f.SnapshotFactory(family=family, name="chat-b", released_at=f.days(-10))
    alias = f.make_alias(name="v1-chat", target=new, at=f.days(-90))
    org = f.OrganizationFactory(slug="acme")
    body = "terms"
    terms = ContractTerms.objects.create(
        version="1",
        title="T",
        body=body,
        body_sha256=ContractTerms.hash_body(body),
        effective_at=f.days(-300),
        retired_bug_policy="kept",
    )
    org.accepted_terms = terms
    org.save(update_fields=["accepted_terms"])
    pin = f.make_pin(org=org, alias=alias, snapshot=old)
    _gateway, key = f.make_gateway("demo-gateway")
    return {"org": org, "pin": pin, "new": new, "key": key, "org_key": f.make_key(org)}


@pytest.fixture
def demo_gateway(tmp_path):
    processes = []

    def start(portal_url: str, key: str) -> str:
        port = free_port()
        log_path = tmp_path / "gateway.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vcp_gateway.demo",
                "--portal",
                portal_url,
                "--gateway-key",
                key,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--key-file",
                str(tmp_path / "receipt-key.pem"),
                "--cache",
                str(tmp_path / "pin-map.json"),
            ],
            cwd=settings.BASE_DIR,
            stdout=open(log_path, "wb"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", process=process, log_path=log_path)
        deadline = time.monotonic() + 30
        while not _get_json(f"{url}/healthz").get("ready"):
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        return url

    def stop_all() -> None:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the demo flushes its usage on SIGTERM
                process.wait(timeout=30)

    start.stop_all = stop_all
    try:
        yield start
    finally:
        stop_all()


def _get_json(url: str) -> dict:
    try:
        with LOOPBACK.open(url, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def complete(url: str, org: str, prompt: str = "Hello") -> tuple[dict, dict]:
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps({"model": "v1-chat", "messages": [{"role": "user", "content": prompt}]}).encode(),
        headers={"X-Organization": org, "Content-Type": "application/json"},
        method="POST",
    )
    with LOOPBACK.open(request, timeout=10) as answer:
        return json.loads(answer.read()), dict(answer.headers)


def test_the_whole_story_through_the_demo_gateway(live_portal, demo_gateway, demo_world):
    portal = live_portal()
    gateway = demo_gateway(portal.url, demo_world["key"])

    # 1. A call, and its receipt kept.
    completion, _ = complete(gateway, "acme")
    assert completion["model"] == "chat-a"
    receipt = completion["receipt"]
    status, verified, _ = http_json(
        "POST",
        f"{portal.url}/api/v1/receipts/verify/",
        key=demo_world["org_key"],
        payload={"receipt": receipt},
    )
    assert (
        status == 200
        and verified["snapshot"]["id"] == "chat-a"
        and verified["signer"] == "gateway:demo-gateway"
    )

    # 2. The pin moves in the portal: the customer consents to a migration through the API.
    migration = migration_propose(pin=demo_world["pin"], to_snapshot=demo_world["new"])
    time.sleep(0.3)  # the gateway's long-poll is waiting at the portal
    started = time.monotonic()
    status, body, _ = http_json(
        "POST",
        f"{portal.url}/api/v1/migrations/{migration.pk}/consent/",
        key=demo_world["org_key"],
        payload={},
    )
    assert status == 200, body
    while complete(gateway, "acme")[0]["model"] != "chat-b":
        assert time.monotonic() - started < 5, portal.log()
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    print(f"consent to next completion served by the new snapshot: {elapsed:.3f} s")
    assert elapsed < 2.0
    answer, _ = complete(gateway, "acme", "Hello")
    assert answer["choices"][0]["message"]["content"] != completion["choices"][0]["message"]["content"]

    # 3. Usage: the gateway reports what it served (flushed when it stops).
    demo_gateway.stop_all()
    served = {u.snapshot.name: u.requests for u in UsageHour.objects.select_related("snapshot")}
    assert served.get("chat-a", 0) >= 1 and served.get("chat-b", 0) >= 2, served

    # 4. The bug is filed with the receipt of the first call: it names the snapshot that answered then.
    status, bug, _ = http_json(
        "POST",
        f"{portal.url}/api/v1/bug-reports/",
        key=demo_world["org_key"],
        payload={"receipt": receipt, "output": "This answer was wrong."},
    )
    assert status == 201, bug
    assert bug["snapshot"]["id"] == "chat-a" and bug["resolved_by"] == "receipt"
