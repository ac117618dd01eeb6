"""Usage in notices: deprecation notices carry the organisation's recent use, and an organisation its
gateways still serve a snapshot 7 days before retirement gets one "still in use" notice, once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from contracts.models import ExtendedSupport
from notifications import services, tasks
from notifications.models import Milestone, Notice, NoticeStatus
from tests import factories as f
from tests.notifications.conftest import accept_terms, deprecate

pytestmark = pytest.mark.django_db


def _retiring(world, *, in_days: float):
    accept_terms(world.org, min_notice_days=5)
    return deprecate(
        world.old,
        deprecated_at=f.days(-30),
        retires_at=timezone.now() + dt.timedelta(days=in_days),
        replacement=world.current,
    )


def test_an_organisation_still_calling_a_snapshot_a_week_before_retirement_is_told_once(world):
    _retiring(world, in_days=6)
    f.record_usage(
        org=world.org,
        alias=world.alias,
        snapshot=world.old,
        hour=timezone.now() - dt.timedelta(days=2),
        requests=321,
    )
    services.notices_plan()
    services.notices_plan()
    notices = Notice.objects.filter(milestone=Milestone.STILL_IN_USE)
    assert [(n.organization, n.snapshot) for n in notices] == [(world.org, world.old)]
    tasks.dispatch_due()
    tasks.dispatch_due()
    notice = notices.get()
    assert notice.status == NoticeStatus.SENT
    messages = [m for m in mail.outbox if "you still call it" in m.subject]
    assert len(messages) == len(notice.sent_to) >= 1
    assert "321 requests in the last 7 days" in messages[0].body
    assert "/o/acme/usage/" in messages[0].body


def test_no_still_in_use_notice_without_recent_calls_or_before_the_last_week(world):
    _retiring(world, in_days=6)
    f.record_usage(
        org=world.org,
        alias=world.alias,
        snapshot=world.old,
        hour=timezone.now() - dt.timedelta(days=9),
        requests=5,
    )
    services.notices_plan()
    assert not Notice.objects.filter(milestone=Milestone.STILL_IN_USE).exists()
    world.old.retires_at = timezone.now() + dt.timedelta(days=20)
    world.old.save(update_fields=["retires_at"])
    f.record_usage(
        org=world.org,
        alias=world.alias,
        snapshot=world.old,
        hour=timezone.now() - dt.timedelta(hours=1),
        requests=5,
    )
    services.notices_plan()
    assert not Notice.objects.filter(milestone=Milestone.STILL_IN_USE).exists()


def test_deprecation_notice_carries_recent_use(world):
    accept_terms(world.org, min_notice_days=90)
    deprecate(world.old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=world.current)
    f.record_usage(
        org=world.org,
        alias=world.alias,
        snapshot=world.old,
        hour=timezone.now() - dt.timedelta(days=3),
        requests=77,
    )
    services.notices_plan()
    tasks.dispatch_due()
    (message,) = [m for m in mail.outbox if "is deprecated" in m.subject][:1]
    assert "77 requests in the last 7 days, 77 in the last 30" in message.body


def test_still_in_use_is_checked_at_send_time_extended_support_postpones_it_a_withdrawal_drops_it(world):
    """#13's send-time truth check applies to #14's notice: it needs no pin (usage through an alias
    default counts) but follows the organisation's effective retirement."""
    snapshot = _retiring(world, in_days=6)
    f.record_usage(
        org=world.org,
        alias=world.alias,
        snapshot=world.old,
        hour=timezone.now() - dt.timedelta(days=1),
        requests=7,
    )
    services.notices_plan()
    notice = Notice.objects.get(milestone=Milestone.STILL_IN_USE, channel="email")
    ExtendedSupport.objects.create(
        organization=world.org,
        snapshot=snapshot,
        starts_at=timezone.now(),
        until=snapshot.retires_at + dt.timedelta(days=60),
    )
    assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.PENDING
    notice.refresh_from_db()
    assert notice.due_at == snapshot.retires_at + dt.timedelta(days=60 - 7)
    assert "rescheduled" in notice.status_reason
    assert not [m for m in mail.outbox if "you still call it" in m.subject]

    snapshot.retires_at = None
    snapshot.save(update_fields=["retires_at"])
    Notice.objects.filter(pk=notice.pk).update(due_at=timezone.now())
    assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.OBSOLETE
    notice.refresh_from_db()
    assert "withdrawn" in notice.status_reason
