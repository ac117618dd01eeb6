from __future__ import annotations

import pytest

from contracts.errors import ApplicationError
from notifications.models import Notice, NoticeStatus
from notifications.services import notice_send_adhoc

pytestmark = pytest.mark.django_db


def test_adhoc_notice_is_sent_once_however_often_it_is_requested(
    world, smtp_settings, django_capture_on_commit_callbacks
):
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            notice = notice_send_adhoc(
                org=world.org,
                kind="billing-cancellation",
                subject="Extended support cancelled",
                body="Your grant ends on 2026-01-01.",
                recipients=["ops@acme.example"],
                dedupe_key="cancel-42",
            )
    assert Notice.objects.filter(organization=world.org).count() == 1
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    assert notice.sent_to == ["ops@acme.example"]
    assert len(smtp_settings.messages) == 1
    message = smtp_settings.messages[0]
    assert message["To"] == "ops@acme.example"
    assert "Extended support cancelled" in message["Subject"]
    assert str(message["List-Unsubscribe"]).strip().startswith("<http")


def test_adhoc_with_malformed_recipient_is_refused_and_writes_nothing(world):
    with pytest.raises(ApplicationError) as error:
        notice_send_adhoc(
            org=world.org,
            kind="bug-status",
            subject="Bug fixed",
            body="",
            recipients=["not-an-address"],
            dedupe_key="bug-1",
        )
    assert "recipients" in error.value.fields
    assert not Notice.objects.exists()


def test_adhoc_without_recipients_goes_to_admins_and_legal(
    world, smtp_settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notice_send_adhoc(org=world.org, kind="bug-status", subject="Bug fixed", body="b", dedupe_key="bug-2")
    assert sorted(m["To"] for m in smtp_settings.messages) == sorted([world.admin.email, world.legal.email])


def test_adhoc_with_an_empty_recipient_list_is_recorded_and_sent_to_nobody(
    world, smtp_settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notice = notice_send_adhoc(
            org=world.org, kind="k", subject="s", body="b", recipients=[], dedupe_key="e"
        )
    assert notice.status == NoticeStatus.SKIPPED
    assert smtp_settings.messages == []
