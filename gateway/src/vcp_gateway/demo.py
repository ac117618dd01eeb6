"""A demo gateway: OpenAI-shaped chat completions routed by the pin map, with receipts and usage.

    python -m vcp_gateway.demo --portal http://127.0.0.1:8000 --gateway-key KEY   # serves :8001

    curl -s http://127.0.0.1:8001/v1/chat/completions -H 'X-Organization: acme' \\
         -d '{"model": "v1-chat", "messages": [{"role": "user", "content": "Hello"}]}'

The completion text is fake, but deterministic per snapshot and prompt, so moving a pin visibly
changes the answer. A demo, not a production server: no client authentication, no TLS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import logging
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vcp_gateway import Backoff, GatewayError, PinMap, PortalUnavailable, ReceiptSigner, UsageReporter
from vcp_gateway.errors import ResolveError, UnknownAlias

log = logging.getLogger("vcp_gateway.demo")

MAX_BODY = 1 << 20
Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers

_OPENINGS = ("Certainly.", "Good question.", "Here is my take.", "In short:", "Let me think.", "Sure.")
_TOPICS = ("Pinned snapshots", "Dated artifacts", "Deprecation notices", "Consent records", "Output receipts")
_CLAIMS = (
    "keep answers reproducible",
    "make upgrades deliberate",
    "leave an audit trail",
    "give notice before anything changes",
    "tie every output to an artifact",
    "make bug reports answerable",
)


def fake_completion(snapshot: str, prompt: str) -> str:
    """Readable text derived from a sha256 of the snapshot name and the prompt."""
    digest = hashlib.sha256(f"{snapshot}\n{prompt}".encode()).digest()
    return (
        f"{_OPENINGS[digest[0] % len(_OPENINGS)]} {_TOPICS[digest[1] % len(_TOPICS)]} "
        f"{_CLAIMS[digest[2] % len(_CLAIMS)]}. ({snapshot}, {digest[:4].hex()})"
    )


def _last_user_message(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content, sort_keys=True)
    return ""


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> Answer:
    return status, {"error": {"message": message, "type": kind, "code": code}}, {}


@dataclass(frozen=True)
class Gateway:
    pin_map: PinMap
    signer: ReceiptSigner
    usage: UsageReporter

    def complete(self, org: str | None, body: bytes) -> Answer:
        """POST /v1/chat/completions."""
        if not org:
            return _error(
                400, "The X-Organization header must name your organisation.", "missing_organization"
            )
        try:
            request = json.loads(body)
        except ValueError:
            return _error(400, "The request body is not valid JSON.", "invalid_json")
        if not isinstance(request, dict) or not isinstance(request.get("model"), str) or not request["model"]:
            return _error(400, "`model` (the alias to call) is required.", "missing_model")
        messages = request.get("messages", [])
        if not isinstance(messages, list):
            return _error(400, "`messages` must be a list.", "invalid_messages")
        alias = request["model"]
        try:
            resolution = self.pin_map.resolve(org, alias)
        except UnknownAlias:
            return _error(404, f"The model `{alias}` does not exist.", "model_not_found")
        except ResolveError as exc:  # no map yet, or an inconsistent one
            return _error(503, str(exc), "pin_map_unavailable", kind="server_error")
        created = dt.datetime.now(dt.UTC)
        response_id = f"chatcmpl-{uuid.uuid4().hex}"
        completion = {
            "id": response_id,
            "object": "chat.completion",
            "created": int(created.timestamp()),
            "model": resolution.snapshot,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": fake_completion(resolution.snapshot, _last_user_message(messages)),
                    },
                    "finish_reason": "stop",
                }
            ],
            "receipt": self.signer.sign(
                org=org, alias=alias, snapshot=resolution.snapshot, response_id=response_id, at=created
            ),
        }
        self.usage.count(org, alias, resolution.snapshot)
        return 200, completion, self.pin_map.headers(resolution)

    def health(self) -> Answer:
        """GET /healthz: 200 once there is a map to serve from, 503 before."""
        staleness = self.pin_map.staleness()
        body = {
            "ready": self.pin_map.ready,
            "revision": self.pin_map.revision,
            "staleness_seconds": None if staleness is None else round(staleness, 3),
            "last_error": self.pin_map.last_error,
            "receipt_key_id": self.signer.key_id,
            "usage": {"pending_buckets": self.usage.pending_buckets, "dropped": self.usage.dropped},
        }
        return (200 if self.pin_map.ready else 503), body, {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], gateway: Gateway):
        super().__init__(address, _Handler)
        self.gateway = gateway


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "vcp-gateway-demo"

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/v1/chat/completions":
            self._answer(_error(404, f"No route for POST {self.path}.", "not_found"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._answer(_error(400, "Bad Content-Length.", "invalid_request"))
            return
        if not 0 <= length <= MAX_BODY:
            self._answer(_error(413, f"The body must be at most {MAX_BODY} bytes.", "body_too_large"))
            return
        self._answer(
            self.server.gateway.complete(self.headers.get("X-Organization"), self.rfile.read(length))
        )

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/healthz":
            self._answer(self.server.gateway.health())
        else:
            self._answer(_error(404, f"No route for GET {self.path}.", "not_found"))

    def _answer(self, answer: Answer) -> None:
        status, body, headers = answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def load_or_create_signer(path: Path) -> ReceiptSigner:
    if path.exists():
        return ReceiptSigner.from_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signer = ReceiptSigner.generate()
    signer.save(path)
    log.info("created receipt key %s in %s", signer.key_id, path)
    return signer


def register_until_answered(signer: ReceiptSigner, portal: str, gateway_key: str) -> None:
    """Register the receipt key, waiting for the portal to come up; a refusal (4xx) is raised."""
    backoff = Backoff(initial=1.0, maximum=30.0)
    for failures in itertools.count():
        try:
            answer = signer.register(portal, gateway_key)
        except PortalUnavailable as exc:
            delay = backoff.delay(failures)
            log.warning("portal not answering (%s); registering again in %.1f s", exc, delay)
            time.sleep(delay)
        else:
            log.info("receipt key %s registered (gateway %s)", signer.key_id, answer.get("gateway"))
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vcp_gateway.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--portal", required=True, help="the portal's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--gateway-key", required=True, help="from `manage.py create_gateway`")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0: any free port (printed at start)")
    parser.add_argument("--key-file", type=Path, default=Path("var/gateway/receipt-key.pem"))
    parser.add_argument("--cache", type=Path, default=Path("var/gateway/pin-map.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the clean-up below on `kill`

    signer = load_or_create_signer(args.key_file)
    try:
        register_until_answered(signer, args.portal, args.gateway_key)
    except GatewayError as exc:
        log.error("the portal refused the receipt key: %s", exc)
        return 1
    pin_map = PinMap(args.portal, args.gateway_key, cache_path=args.cache)
    usage = UsageReporter(args.portal, args.gateway_key)
    server = _Server((args.host, args.port), Gateway(pin_map, signer, usage))
    pin_map.start()
    usage.start()
    host, port = server.server_address[:2]
    print(f"vcp-gateway demo listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        pin_map.stop()
        usage.stop()  # the last counts go out before the process ends
    return 0


if __name__ == "__main__":
    sys.exit(main())
