"""The local outbox: the embedded default's e-mail backend keeps each message as an .eml file under
var/outbox/, which the /outbox/ page (DEBUG only) lists and shows to a person."""

from __future__ import annotations

import secrets
import smtplib
import uuid
from email import message_from_bytes, policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail.backends import smtp
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import sanitize_address
from django.utils import timezone


def outbox_dir() -> Path:
    path = Path(getattr(settings, "OUTBOX_DIR", settings.VAR_DIR / "outbox"))
    path.mkdir(parents=True, exist_ok=True)
    return path


class OutboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            name = f"{timezone.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
            (outbox_dir() / name).write_bytes(message.message().as_bytes())
            sent += 1
        return sent


def _addressed_to(parsed, recipient: str) -> bool:
    wanted = recipient.strip().lower()
    headers = [str(parsed[name] or "") for name in ("To", "Cc", "Bcc")]
    return bool(wanted) and any(address.lower() == wanted for _, address in getaddresses(headers))


def outbox_messages(limit: int = 200, *, recipient: str | None = None) -> list[dict[str, Any]]:
    """The newest messages first, parsed for display; only those addressed to `recipient` if given
    (an empty recipient sees nothing)."""
    messages = []
    for path in sorted(outbox_dir().glob("*.eml"), reverse=True):
        if len(messages) >= limit:
            break
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        if recipient is not None and not _addressed_to(parsed, recipient):
            continue
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        messages.append(
            {
                "id": path.stem,
                "subject": str(parsed["Subject"] or ""),
                "to": str(parsed["To"] or ""),
                "from": str(parsed["From"] or ""),
                "date": str(parsed["Date"] or ""),
                "headers": dict(parsed.items()),
                "text": text.get_content() if text else "",
                "html": html.get_content() if html else "",
            }
        )
    return messages


def with_boundaries(message):
    """Give every multipart part of `message` a random 128-bit boundary before it is written.

    Without one, the email package draws a short random boundary and compiles a new regular
    expression per message to make sure the content does not contain it (about a millisecond a
    message in a batch of notices); a boundary of 32 random hex digits cannot be guessed by
    whoever writes the content, so it needs no such check."""
    for part in message.walk():
        if part.is_multipart() and part.get_boundary() is None:
            part.set_boundary(f"==vcp-{secrets.token_hex(16)}==")
    return message


class SmtpEmailBackend(smtp.EmailBackend):
    """Django's SMTP backend, pipelined (RFC 2920) when the server offers PIPELINING.

    One message is MAIL FROM, RCPT TO, DATA, then the content: four round trips, one after another.
    A server that advertises PIPELINING (Postfix, Exim, the large relays do) takes the three commands
    in one write, so a message costs two round trips over the reused connection of a notice batch.
    Without it, this is exactly Django's backend. A refusal raises the same smtplib exceptions, after
    the transaction is reset so the connection can carry the next message.
    """

    def _send(self, email_message) -> bool:
        connection = self.connection
        if email_message.recipients():
            connection.ehlo_or_helo_if_needed()  # what the server offers is known from the first message
        if not email_message.recipients() or not connection.has_extn("pipelining"):
            return super()._send(email_message)
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        sender = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(addr, encoding) for addr in email_message.recipients()]
        content = with_boundaries(email_message.message()).as_bytes(linesep="\r\n")
        options = ""
        if connection.has_extn("size"):
            options += f" SIZE={len(content)}"
        if connection.has_extn("8bitmime"):
            options += " BODY=8BITMIME"
        try:
            commands = [
                f"MAIL FROM:{smtplib.quoteaddr(sender)}{options}",
                *(f"RCPT TO:{smtplib.quoteaddr(r)}" for r in recipients),
                "DATA",
            ]
            connection.send("".join(f"{command}\r\n" for command in commands).encode("ascii"))
            mail_code, mail_reply = connection.getreply()
            refused = {}
            for recipient in recipients:
                code, reply = connection.getreply()
                if code not in (250, 251):
                    refused[recipient] = (code, reply)
            data_code, data_reply = connection.getreply()
            if mail_code != 250:
                self._abandon(data_code)
                raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
            if len(refused) == len(recipients):
                self._abandon(data_code)
                raise smtplib.SMTPRecipientsRefused(refused)
            if data_code != 354:
                self._abandon(data_code)
                raise smtplib.SMTPDataError(data_code, data_reply)
            body = smtplib._quote_periods(content)  # already CRLF (as_bytes with linesep)
            if body[-2:] != b"\r\n":
                body += b"\r\n"
            connection.send(body + b".\r\n")
            code, reply = connection.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    def _abandon(self, data_code: int) -> None:
        """End a refused transaction so the connection can carry the next message."""
        if data_code == 354:  # the server waits for content: never give it any, drop the connection
            self.close()
            return
        self.connection.rset()
