"""E-mail through a real SMTP server (aiosmtpd on 127.0.0.1): headers, links, unsubscribe,
acknowledgement and escalation."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.utils import timezone

from contracts.models import Membership, Role
from notifications import services, tasks
from notifications.models import Contact, Milestone, Notice, NoticeStatus, Unsubscription
from tests import factories as f
from tests.notifications.conftest import accept_terms, deprecate

pytestmark = pytest.mark.django_db


def send_all() -> None:
    for notice_id in services.notices_due_ids():
        tasks.send_notice.apply(args=[notice_id]).get()


def links(message) -> list[str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.findall(r"https?://\S+", text)


@pytest.fixture
def deprecated(world):
    accept_terms(world.org, min_notice_days=90, ack_escalation_days=5)
    services.calendar_token_regenerate(org=world.org)
    return deprecate(world.old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=world.current)


def test_legal_notice_reaches_admins_legal_and_contacts_with_ack_link_and_no_unsubscribe(
    world, deprecated, smtp_settings
):
    services.contact_add(org=world.org, email="Procurement@Acme.example", name="Procurement")
    services.notices_plan()
    send_all()
    recipients = sorted(str(m["To"]) for m in smtp_settings.messages)
    assert recipients == sorted([world.admin.email, world.legal.email, "procurement@acme.example"])
    assert world.member.email not in recipients
    message = smtp_settings.messages[0]
    assert "chat-2025-01-01 is deprecated" in str(message["Subject"])
    assert message["List-Unsubscribe"] is None
    assert message["X-Notice-Milestone"] == "deprecation-announced"
    assert message["Message-ID"].startswith("<notice-")
    html = message.get_body(preferencelist=("html",)).get_content()
    found = links(message)
    assert any("/o/acme/diff/chat-2025-01-01...chat-2025-06-01/" in u for u in found)
    assert any("/api/v1/calendar.ics?token=" in u for u in found)
    assert any("/notices/ack/" in u for u in found)
    assert "/notices/ack/" in html and "/o/acme/" in html


def test_optional_reminder_carries_one_click_list_unsubscribe_and_unsubscribing_stops_only_reminders(
    world, smtp_settings, client
):
    accept_terms(world.org, min_notice_days=90)
    deprecate(world.old, deprecated_at=f.days(-100), retires_at=f.days(29), replacement=world.current)
    services.notices_plan()
    send_all()
    reminder = next(m for m in smtp_settings.messages if m["X-Notice-Milestone"] == "t-30")
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(reminder["List-Unsubscribe"]).strip().strip("<>")
    path = url.split("127.0.0.1:8000", 1)[1]
    response = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Unsubscription.objects.filter(organization=world.org, email=str(reminder["To"])).exists()
    legal = (
        Notice.objects.get(milestone=Milestone.DEPRECATION_ANNOUNCED)
        if Notice.objects.filter(milestone=Milestone.DEPRECATION_ANNOUNCED).exists()
        else None
    )
    assert legal is None or legal.legal
    optional = Notice(organization=world.org, milestone=Milestone.T_7, legal=False, snapshot=world.old)
    assert str(reminder["To"]) not in services.notice_recipients(notice=optional)
    mandatory = Notice(
        organization=world.org, milestone=Milestone.RETIREMENT_DAY, legal=True, snapshot=world.old
    )
    assert str(reminder["To"]) in services.notice_recipients(notice=mandatory)


def test_acknowledge_link_records_who_and_when_once(world, deprecated, smtp_settings, client):
    services.notices_plan()
    send_all()
    message = next(m for m in smtp_settings.messages if str(m["To"]) == world.legal.email)
    ack = next(u for u in links(message) if "/notices/ack/" in u).split("127.0.0.1:8000", 1)[1]
    assert client.get(ack).status_code == 200
    notice = Notice.objects.get()
    assert notice.acknowledged_at is None  # a link scanner's GET does not acknowledge
    client.force_login(world.legal)
    assert client.post(ack).status_code == 200
    notice.refresh_from_db()
    assert notice.acknowledged_by_email == world.legal.email and notice.acknowledged_by == world.legal
    first = notice.acknowledged_at
    client.post(ack)
    notice.refresh_from_db()
    assert notice.acknowledged_at == first


def test_a_forged_ack_token_is_404(client, world):
    assert client.get("/notices/ack/not-a-token/").status_code == 404
    assert client.post("/notices/unsubscribe/forged/").status_code == 404


def test_unacknowledged_legal_notice_escalates_once_after_the_terms_days_to_every_admin_and_legal(
    world, deprecated, smtp_settings
):
    second_admin = f.MembershipFactory(
        organization=world.org, role=Role.ADMIN, user__username="acme-admin2"
    ).user
    services.contact_add(org=world.org, email="contact@acme.example")
    services.notices_plan()
    send_all()
    original = Notice.objects.get()
    smtp_settings.messages.clear()
    assert services.notices_escalate(at=timezone.now() + dt.timedelta(days=4)) == 0
    with time_machine.travel(timezone.now() + dt.timedelta(days=6), tick=True):
        assert services.notices_escalate() == 1
        send_all()
    assert services.notices_escalate(at=timezone.now() + dt.timedelta(days=30)) == 0
    recipients = sorted(str(m["To"]) for m in smtp_settings.messages)
    expected = sorted(
        Membership.objects.filter(organization=world.org, role__in=[Role.ADMIN, Role.LEGAL]).values_list(
            "user__email", flat=True
        )
    )
    assert recipients == expected and second_admin.email in recipients
    escalation = Notice.objects.get(milestone=Milestone.ESCALATION)
    assert escalation.escalated_from == original and escalation.status == NoticeStatus.SENT
    assert all("Unacknowledged" in str(m["Subject"]) for m in smtp_settings.messages)
    original.refresh_from_db()
    assert original.escalated_at is not None


def test_an_acknowledged_notice_does_not_escalate(world, deprecated):
    services.notices_plan()
    send_all()
    Notice.objects.update(acknowledged_at=timezone.now(), acknowledged_by_email="x@acme.example")
    assert services.notices_escalate(at=timezone.now() + dt.timedelta(days=60)) == 0


def test_malformed_contact_address_is_refused_naming_the_field_and_writes_nothing(world):
    from contracts.errors import ApplicationError

    with pytest.raises(ApplicationError) as error:
        services.contact_add(org=world.org, email="no at sign")
    assert "email" in error.value.fields
    assert not Contact.objects.exists()
