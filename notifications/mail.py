"""The local outbox: the embedded default's e-mail backend keeps each message as an .eml file under
var/outbox/, which the /outbox/ page (DEBUG only) lists and shows to a person."""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
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
