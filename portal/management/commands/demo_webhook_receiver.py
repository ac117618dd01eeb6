"""The embedded demo's webhook receiver: a tiny standard-library HTTP server on loopback that
answers 204 to every POST and appends what it received to a log a person can read, so the demo's
delivery log shows real deliveries. `make run` starts it beside the portal."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def make_handler(log_path: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length", 0) or 0), 1_000_000)
            body = self.rfile.read(length)
            entry = {
                "path": self.path,
                "webhook-id": self.headers.get("webhook-id", ""),
                "webhook-timestamp": self.headers.get("webhook-timestamp", ""),
                "body": body.decode("utf-8", "replace"),
            }
            with log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
            self.send_response(204)
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Demo webhook receiver: POST deliveries here; they are logged.\n")

        def log_message(self, *args) -> None:
            pass

    return Handler


class Command(BaseCommand):
    help = "Run the demo webhook receiver on 127.0.0.1 (DEBUG only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=settings.DEMO_WEBHOOK_PORT)
        parser.add_argument("--log", default=str(Path(settings.VAR_DIR) / "webhook-receiver.log"))

    def handle(self, *args, port: int, log: str, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo webhook receiver runs only with DEBUG on.")
        log_path = Path(log)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(log_path))
        self.stdout.write(f"Demo webhook receiver on http://127.0.0.1:{port}/ (log: {log_path})")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
