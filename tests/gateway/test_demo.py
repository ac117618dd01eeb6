"""The demo gateway as a process against the fake portal: completions, receipts, headers, usage."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import pytest

from tests.gateway.helpers import GATEWAY_KEY, verify_receipt, wait_until


class Demo:
    def __init__(self, process: subprocess.Popen[str], port: int):
        self.process = process
        self.port = port

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.headers), json.loads(response.read())
        finally:
            connection.close()

    def complete(self, org: str | None, model: str, prompt: str = "Which snapshot are you?"):
        body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        return self.request("POST", "/v1/chat/completions", body, {"X-Organization": org} if org else {})


@pytest.fixture
def demo(portal, tmp_path):
    log = (tmp_path / "demo.log").open("w")
    command = [
        sys.executable,
        "-m",
        "vcp_gateway.demo",
        *("--portal", portal.url, "--gateway-key", GATEWAY_KEY, "--port", "0"),
        *("--key-file", str(tmp_path / "keys" / "receipt.pem"), "--cache", str(tmp_path / "pin-map.json")),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        wait_until(lambda: lines or process.poll() is not None, timeout=30, what="the demo to start")
        assert lines, (tmp_path / "demo.log").read_text()
        yield Demo(process, int(lines[0].rsplit(":", 1)[1]))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        log.close()


def test_demo_gateway_answers_with_receipts_headers_and_reports_usage(portal, demo):
    status, _, health = wait_until(lambda: (answer := demo.request("GET", "/healthz"))[0] == 200 and answer)
    assert health["revision"] == portal.revision
    assert health["receipt_key_id"] in portal.receipt_keys

    status, headers, completion = demo.complete("acme", "v1-chat")

    assert status == 200
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "chat-2025-09-29"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    receipt = completion["receipt"]
    assert (receipt["org"], receipt["alias"], receipt["snapshot"]) == ("acme", "v1-chat", "chat-2025-09-29")
    assert receipt["response_id"] == completion["id"]
    assert verify_receipt(receipt, portal.receipt_keys[receipt["key_id"]])
    assert headers["Deprecation"].startswith("@")
    assert headers["Sunset"].endswith("GMT")
    assert 'rel="successor-version"' in headers["Link"]

    again = demo.complete("acme", "v1-chat")[2]
    other = demo.complete("umbrella", "v1-chat")
    assert again["choices"][0]["message"]["content"] == completion["choices"][0]["message"]["content"]
    assert other[2]["model"] == "chat-2026-03-02"
    assert other[2]["choices"][0]["message"]["content"] != completion["choices"][0]["message"]["content"]
    assert "Deprecation" not in other[1]

    portal.change(
        "pins",
        "v1-chat",
        {"snapshot": "chat-2026-03-02", "policy": "manual", "extended_support_until": None},
        org="acme",
    )
    served = Counter(
        [("acme", completion["model"]), ("acme", again["model"]), ("umbrella", other[2]["model"])]
    )

    def moved() -> bool:
        model = demo.complete("acme", "v1-chat")[2]["model"]
        served["acme", model] += 1
        return model == "chat-2026-03-02"

    wait_until(moved, what="the pin move to reach the gateway")

    demo.process.send_signal(signal.SIGTERM)
    assert demo.process.wait(timeout=20) == 0  # and the last usage went out on the way
    reported: Counter[tuple[str, str]] = Counter()
    for row in portal.usage_rows():
        reported[row["org"], row["snapshot"]] += row["requests"]
    assert reported == served


@pytest.mark.parametrize(
    ("org", "body", "status", "code"),
    [
        (None, {"model": "v1-chat", "messages": []}, 400, "missing_organization"),
        ("acme", b"{not json", 400, "invalid_json"),
        ("acme", {"messages": []}, 400, "missing_model"),
        ("acme", {"model": "v9-chat", "messages": []}, 404, "model_not_found"),
    ],
)
def test_demo_gateway_errors_in_openai_shape(demo, org, body, status, code):
    wait_until(lambda: demo.request("GET", "/healthz")[0] == 200)

    answer = demo.request("POST", "/v1/chat/completions", body, {"X-Organization": org} if org else {})

    assert answer[0] == status
    assert answer[2]["error"]["code"] == code
    assert set(answer[2]["error"]) == {"message", "type", "code"}
