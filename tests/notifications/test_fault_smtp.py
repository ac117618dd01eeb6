"""The SMTP server accepts part of a batch, vanishes in the middle of a message, refuses, is gone,
then returns: every notice reaches every recipient exactly once. A real SMTP server (aiosmtpd) on
127.0.0.1, the real send path (claim, deliver, release, retry), time moved past each backoff.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from email import message_from_bytes, policy

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.utils import timezone

from contracts.models import Role
from notifications import services
from notifications.models import Notice, NoticeStatus
from notifications.tasks import dispatch_notices
from tests import factories as f
from tests.notifications.conftest import deprecate, free_port

pytestmark = pytest.mark.django_db

ORGS = 4  # two recipients each (admin and legal): eight messages


class FlakySmtp:
    """Accepts `budget` messages, drops the connection in the middle of the next one, then refuses
    every sender (421) until `recover()`."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.received: list = []
        self.refusing = False
        self.lock = threading.Lock()

    def recover(self) -> None:
        self.budget, self.refusing = 10**6, False

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.refusing:
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if len(self.received) < self.budget:
                self.received.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"
            self.refusing = True
        server.transport.abort()  # gone mid-message: the client never hears back
        return "451 aborted"


def make_batch() -> None:
    family = f.FamilyFactory(slug="sm")
    old = f.SnapshotFactory(family=family, name="sm-old", released_at=f.days(-300))
    new = f.SnapshotFactory(family=family, name="sm-new", released_at=f.days(-10))
    alias = f.make_alias(name="sm-chat", target=old, at=f.days(-299))
    for i in range(ORGS):
        org = f.OrganizationFactory(slug=f"sm{i}")
        f.MembershipFactory(organization=org, role=Role.ADMIN, user__username=f"sm{i}-admin")
        f.MembershipFactory(organization=org, role=Role.LEGAL, user__username=f"sm{i}-legal")
        f.make_pin(org=org, alias=alias, snapshot=old, at=f.days(-200))
    deprecate(old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=new)


def test_an_smtp_server_that_vanishes_mid_batch_and_returns_delivers_every_notice_exactly_once(settings):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    make_batch()
    assert services.notices_plan() == ORGS
    smtp = FlakySmtp(budget=3)  # the second recipient of the second notice is where it vanishes
    server = Controller(smtp, hostname="127.0.0.1", port=port)
    server.start()
    clock = timezone.now()
    try:
        dispatch_notices()
        assert len(smtp.received) == 3 and smtp.refusing
        assert Notice.objects.filter(status=NoticeStatus.SENT).count() == 1
    finally:
        server.stop()

    with time_machine.travel(clock + dt.timedelta(hours=1), tick=False):
        dispatch_notices()  # nobody listening at all: connection refused, every notice released
    assert Notice.objects.filter(status=NoticeStatus.SENDING).count() == 0
    assert len(smtp.received) == 3

    smtp.recover()
    server = Controller(smtp, hostname="127.0.0.1", port=port)
    server.start()
    try:
        with time_machine.travel(clock + dt.timedelta(hours=3), tick=False):
            dispatch_notices()
    finally:
        server.stop()

    assert set(Notice.objects.values_list("status", flat=True)) == {NoticeStatus.SENT}
    delivered = Counter((str(m["X-Notice-Id"]), str(m["To"])) for m in smtp.received)
    expected = {
        (str(n.pk), f"sm{i}-{role}@example.com")
        for i, n in enumerate(Notice.objects.order_by("organization__slug"))
        for role in ("admin", "legal")
    }
    assert set(delivered) == expected
    assert set(delivered.values()) == {1}, delivered
    assert len({str(m["Message-ID"]) for m in smtp.received}) == 2 * ORGS
