"""The one way contracts asks for an e-mail to an organisation.

Dependencies point notifications → contracts, never back: the notifications app plugs its outbox in
at start-up (`organization_mail_sender_set` in NotificationsConfig.ready), which sends each message
once per dedupe key and shows it in the organisation's notice log. Without it (contracts alone), a
plain Django e-mail goes out after commit.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.mail import send_mail
from django.db import transaction

from contracts.models import Membership, Organization, Role

_sender: Callable | None = None


def organization_mail_sender_set(sender: Callable | None) -> None:
    global _sender
    _sender = sender


def organization_mail_send(
    *,
    org: Organization,
    kind: str,
    subject: str,
    body: str,
    dedupe_key: str,
    recipients: list[str] | None = None,
    webhook_event: str = "",
    webhook_data: dict | None = None,
) -> None:
    """Queue one e-mail to an organisation (recipients None: its admins and legal members), and with
    `webhook_event` the same news to its webhook endpoints subscribed to that event."""
    if _sender is not None:
        _sender(
            org=org,
            kind=kind,
            subject=subject,
            body=body,
            recipients=recipients,
            dedupe_key=dedupe_key,
            webhook_event=webhook_event,
            webhook_data=webhook_data,
        )
        return
    if recipients is None:
        recipients = sorted(
            set(
                Membership.objects.filter(organization=org, role__in=[Role.ADMIN, Role.LEGAL])
                .exclude(user__email="")
                .values_list("user__email", flat=True)
            )
        )
    if recipients:
        transaction.on_commit(lambda: send_mail(subject, body, None, recipients))


# The notice trail (what was sent to an organisation and who acknowledged it) lives in the
# notifications app; contracts reads it through this port, filled at start-up like the sender.
_notice_reader: Callable | None = None


def organization_notices_reader_set(reader: Callable | None) -> None:
    global _notice_reader
    _notice_reader = reader


def organization_notices(*, org: Organization) -> list[dict]:
    """Every notice of `org`, oldest first, as plain dicts: id, milestone, channel, status, subject,
    snapshot (name or ""), migration_id, due_at, sent_at, sent_to, acknowledged_at, acknowledged_by.
    Empty without the notifications app."""
    if _notice_reader is None:
        return []
    return _notice_reader(org=org)
