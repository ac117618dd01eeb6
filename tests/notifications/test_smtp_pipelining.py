"""The SMTP backend of notice batches: pipelined (RFC 2920) when the server offers it, Django's
behaviour otherwise, and a refused message leaves the connection usable for the next one."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from django.core.mail import EmailMessage, EmailMultiAlternatives

from notifications.mail import SmtpEmailBackend, with_boundaries
from tests.notifications.conftest import free_port


class Sink:
    def __init__(self, *, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.messages = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        extra = ["250-PIPELINING"] if self.pipelining else []
        return [*responses[:-1], *extra, responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (
                envelope.mail_from,
                envelope.rcpt_tos,
                message_from_bytes(envelope.content, policy=policy.default),
            )
        )
        return "250 OK"


@pytest.fixture(params=[True, False], ids=["pipelining", "plain"])
def sink(request):
    handler = Sink(pipelining=request.param)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def message(to: str, n: int) -> EmailMessage:
    return EmailMessage(
        subject=f"Notice {n}",
        body=f"line\n.leading dot {n}\n",
        from_email="Version Contract Portal <portal@example.com>",
        to=[to],
    )


def test_messages_arrive_whole_over_one_connection_and_a_refusal_spares_the_next(sink):
    handler, port = sink
    backend = SmtpEmailBackend(host="127.0.0.1", port=port, fail_silently=False)
    backend.open()
    try:
        backend.send_messages([message("a@example.com", 1), message("b@example.com", 2)])
        assert bool(backend.connection.has_extn("pipelining")) is handler.pipelining
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            backend.send_messages([message("nobody@example.com", 3)])
        backend.send_messages([message("c@example.com", 4)])
    finally:
        backend.close()
    assert [(frm, tos, m["Subject"]) for frm, tos, m in handler.messages] == [
        ("portal@example.com", ["a@example.com"], "Notice 1"),
        ("portal@example.com", ["b@example.com"], "Notice 2"),
        ("portal@example.com", ["c@example.com"], "Notice 4"),
    ]
    assert handler.messages[0][2].get_content().replace("\r\n", "\n") == "line\n.leading dot 1\n"  # dots kept


def test_every_multipart_part_gets_its_own_unguessable_boundary_and_the_message_reads_the_same():
    mail = EmailMultiAlternatives("Subject", "Plain text", "from@example.com", ["to@example.com"])
    mail.attach_alternative("<p>HTML</p>", "text/html")
    mail.attach("notice.ics", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "text/calendar")
    message = with_boundaries(mail.message())
    boundaries = [p.get_boundary() for p in message.walk() if p.is_multipart()]
    assert len(boundaries) == 2 and len(set(boundaries)) == 2
    assert all(b.startswith("==vcp-") and len(b) == 6 + 32 + 2 for b in boundaries)
    parsed = message_from_bytes(message.as_bytes(linesep="\r\n"), policy=policy.default)
    assert parsed.get_body(("plain",)).get_content().strip() == "Plain text"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>HTML</p>"
    assert [a.get_filename() for a in parsed.iter_attachments()] == ["notice.ics"]
