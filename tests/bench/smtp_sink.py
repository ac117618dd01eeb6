"""An SMTP sink for benchmarks, run as its own process so its parsing is not what a benchmark
measures: `python -m tests.bench.smtp_sink PORT OUTFILE` appends each message's Message-ID to
OUTFILE, one a line, and answers 250 to everything."""

from __future__ import annotations

import asyncio
import re
import sys

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.M | re.I)


class Sink:
    def __init__(self, out) -> None:
        self.out = out

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """Offer PIPELINING, as production relays (Postfix, Exim, SES) do."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server, session, envelope):
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        match = _MESSAGE_ID.search(head)
        self.out.write((match.group(1) if match else b"-") + b"\n")
        return "250 OK"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "ab", buffering=0) as out:
        controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
        controller.start()
        print("ready", flush=True)
        try:
            asyncio.run(asyncio.Event().wait())
        finally:
            controller.stop()


if __name__ == "__main__":
    main()
