"""Truthful notices (issue #13, item 3): rollback, decline, deferral and follow-moves each have
their own notice; the sender checks at send time that what a notice says is still true; a
milestone whose date has passed goes out as a late notice that says so, or folds into the next."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
import time_machine
from django.apps import apps as django_apps
from django.core import mail
from django.utils import timezone

from contracts.consent import services as consent
from contracts.instants import instant_words
from contracts.models import ExtendedSupport
from notifications import milestones as ms
from notifications import services, tasks
from notifications.models import Channel, Milestone, Notice, NoticeStatus
from tests import factories as f
from tests.contracts.ledger_helpers import accept, decider, make_terms
from tests.notifications.conftest import deprecate

pytestmark = pytest.mark.django_db


def send_all() -> dict[str, str]:
    """Send every due e-mail notice now; milestone → outcome."""
    return {
        notice.milestone: tasks.send_notice.apply(args=[notice.pk]).get()
        for notice in Notice.objects.filter(channel=Channel.EMAIL, due_at__lte=timezone.now()).order_by("id")
        if notice.status == NoticeStatus.PENDING
    }


@pytest.fixture
def terms(world):
    return accept(world.org, make_terms("std-1", min_notice_days=30, rollback_window_hours=72), world.admin)


def test_applied_then_rolled_back_sends_the_rollback_not_the_applied_notice(world, terms):
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    consent.migration_consent(migration=migration, decider=decider(world.admin))
    services.notices_plan()
    applied = Notice.objects.get(
        migration=migration, milestone=Milestone.MIGRATION_APPLIED, channel=Channel.EMAIL
    )
    consent.migration_rollback(migration=migration, decider=decider(world.admin))
    # The worker picks the "applied" notice up only now: it is no longer true.
    assert tasks.send_notice.apply(args=[applied.pk]).get() == NoticeStatus.OBSOLETE
    applied.refresh_from_db()
    assert applied.status == NoticeStatus.OBSOLETE and applied.sent_at is None
    assert "rolled back" in applied.status_reason
    mail.outbox.clear()
    services.notices_plan()
    rolled = Notice.objects.get(
        migration=migration, milestone=Milestone.MIGRATION_ROLLED_BACK, channel=Channel.EMAIL
    )
    assert tasks.send_notice.apply(args=[rolled.pk]).get() == NoticeStatus.SENT
    subjects = {m.subject for m in mail.outbox}
    assert subjects == {f"[Acme] Migration rolled back: your pin is on {world.old.name} again"}
    # Planning again adds no "applied" notice for a rolled-back migration.
    assert services.notices_plan() == 0


def test_a_decline_and_a_deferral_each_have_their_own_notice(world, terms):
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    until = timezone.now() + dt.timedelta(days=10)
    consent.migration_defer(migration=migration, decider=decider(world.admin), until=until)
    services.notices_plan()
    deferred = Notice.objects.get(
        migration=migration, milestone=Milestone.MIGRATION_DEFERRED, channel=Channel.EMAIL
    )
    assert tasks.send_notice.apply(args=[deferred.pk]).get() == NoticeStatus.SENT
    assert "Migration deferred until" in mail.outbox[-1].subject
    consent.migration_decline(migration=migration, decider=decider(world.admin))
    services.notices_plan()
    declined = Notice.objects.get(
        migration=migration, milestone=Milestone.MIGRATION_DECLINED, channel=Channel.EMAIL
    )
    assert tasks.send_notice.apply(args=[declined.pk]).get() == NoticeStatus.SENT
    assert mail.outbox[-1].subject == f"[Acme] Migration declined: your pin stays on {world.old.name}"


def deferral_notices(migration, channel=Channel.EMAIL) -> list[Notice]:
    return list(
        Notice.objects.filter(
            migration=migration, milestone=Milestone.MIGRATION_DEFERRED, channel=channel
        ).order_by("due_at")
    )


def test_each_deferral_of_a_migration_is_told_once_with_its_own_end_date(world, terms, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # planned only: no webhook notice is sent here
    services.webhook_endpoint_create(
        org=world.org, url="http://127.0.0.1:9/hook", events=["migration.deferred"]
    )
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    first_until = timezone.now() + dt.timedelta(days=10)
    first = consent.migration_defer(migration=migration, decider=decider(world.admin), until=first_until)
    services.notices_plan()
    with time_machine.travel(timezone.now() + dt.timedelta(hours=2), tick=False):
        second_until = timezone.now() + dt.timedelta(days=20)
        second = consent.migration_defer(
            migration=migration, decider=decider(world.admin), until=second_until
        )
        assert services.notices_plan() == 2  # the second deferral's e-mail and webhook notices
        notices = deferral_notices(migration)
        assert [n.dedupe_key for n in notices] == [
            f"migration-deferred:{first.seq}",
            f"migration-deferred:{second.seq}",
        ]
        assert [n.due_at for n in notices] == [first.created_at, second.created_at]
        assert len(deferral_notices(migration, Channel.WEBHOOK)) == 2
        assert [tasks.send_notice.apply(args=[n.pk]).get() for n in notices] == ["sent", "sent"]
    subjects = [m.subject for m in mail.outbox]
    route = f"{world.old.name} → {world.current.name}"
    for until, record in ((first_until, first), (second_until, second)):
        subject = f"[Acme] Migration deferred until {instant_words(until, with_time=False)}: {route}"
        assert subjects.count(subject) == 2  # the admin and the legal member, once each
        body = next(m.body for m in mail.outbox if m.subject == subject)
        assert f"deferred until {instant_words(until)}" in body and f"record #{record.seq} of your" in body
    # The webhook payload of each deferral names that deferral's own end date, beside the latest.
    hooks = sorted(deferral_notices(migration, Channel.WEBHOOK), key=lambda n: n.due_at)
    for notice, record in zip(hooks, (first, second), strict=True):
        data = services._notice_payload(notice, "migration.deferred")["data"]
        assert data["deferral"] == {"record": record.seq, "deferred_until": record.details["deferred_until"]}
        assert data["migration"]["deferred_until"] is not None


def test_planning_the_same_deferral_again_adds_no_second_notice(world, terms):
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    consent.migration_defer(
        migration=migration, decider=decider(world.admin), until=timezone.now() + dt.timedelta(days=10)
    )
    assert services.notices_plan() >= 1
    assert services.notices_plan() == 0
    (notice,) = deferral_notices(migration)
    assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.SENT
    assert services.notices_plan() == 0
    assert len(deferral_notices(migration)) == 1
    assert tasks.send_notice.apply(args=[notice.pk]).get() == "not-claimed"


def test_a_deferral_notice_sent_late_says_so_and_keeps_its_date(world, terms):
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    until = timezone.now() + dt.timedelta(days=10)
    consent.migration_defer(migration=migration, decider=decider(world.admin), until=until)
    services.notices_plan()
    (notice,) = deferral_notices(migration)
    with time_machine.travel(timezone.now() + dt.timedelta(days=3), tick=False):
        assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.SENT
    assert mail.outbox[-1].subject == (
        f"[Acme] Late notice: Migration deferred until {instant_words(until, with_time=False)}: "
        f"{world.old.name} → {world.current.name}"
    )


def test_deferral_notices_planned_before_each_had_its_own_get_their_deferral_s_key(world, terms):
    """The data migration keys a notice planned per migration (no key) by the deferral it told."""
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    record = consent.migration_defer(
        migration=migration, decider=decider(world.admin), until=timezone.now() + dt.timedelta(days=10)
    )
    legacy = Notice.objects.create(
        organization=world.org,
        migration=migration,
        milestone=Milestone.MIGRATION_DEFERRED,
        channel=Channel.EMAIL,
        due_at=record.created_at,
        status=NoticeStatus.SENT,
    )
    step = importlib.import_module("notifications.migrations.0011_one_notice_per_deferral")
    step.key_planned_deferrals(django_apps, None)
    legacy.refresh_from_db()
    assert legacy.dedupe_key == f"migration-deferred:{record.seq}"
    services.notices_plan()
    assert deferral_notices(migration) == [legacy]


def test_a_proposal_notice_decided_before_it_was_sent_is_not_sent(world, terms):
    migration = consent.migration_propose(pin=world.pin, to_snapshot=world.current)
    services.notices_plan()
    proposed = Notice.objects.get(
        migration=migration, milestone=Milestone.MIGRATION_PROPOSED, channel=Channel.EMAIL
    )
    consent.migration_decline(migration=migration, decider=decider(world.admin))
    assert tasks.send_notice.apply(args=[proposed.pk]).get() == NoticeStatus.OBSOLETE


RETIRES = dt.datetime(2031, 3, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def retiring(world):
    accept(world.org, make_terms("std-2", min_notice_days=30), world.admin)
    with time_machine.travel(RETIRES - dt.timedelta(days=60), tick=False):
        deprecate(world.old, deprecated_at=timezone.now(), retires_at=RETIRES, replacement=world.current)
    return world.old


def test_a_reminder_sent_late_says_it_is_late_and_counts_from_the_day_it_is_sent(world, retiring):
    with time_machine.travel(RETIRES - dt.timedelta(days=7, hours=-1), tick=False):
        services.notices_plan()
    t7 = Notice.objects.get(snapshot=retiring, milestone=Milestone.T_7, channel=Channel.EMAIL)
    # The worker was down for three days.
    with time_machine.travel(RETIRES - dt.timedelta(days=4), tick=False):
        assert tasks.send_notice.apply(args=[t7.pk]).get() == NoticeStatus.SENT
    subject = mail.outbox[-1].subject
    assert subject == f"[Acme] Late notice: {retiring.name} retires in 4 days (20 March 2031)"
    assert "This notice is late: it was due 13 March 2031, 12:00 UTC" in mail.outbox[-1].body
    t7.refresh_from_db()
    assert t7.status_reason.startswith("Sent late")


def test_a_reminder_whose_retirement_has_passed_is_folded_never_retires_tomorrow(world, retiring):
    with time_machine.travel(RETIRES - dt.timedelta(days=1), tick=False):
        services.notices_plan()
    t1 = Notice.objects.get(snapshot=retiring, milestone=Milestone.T_1, channel=Channel.EMAIL)
    # Three weeks later the worker comes back: "retires tomorrow" would be false.
    with time_machine.travel(RETIRES + dt.timedelta(days=21), tick=False):
        assert tasks.send_notice.apply(args=[t1.pk]).get() == NoticeStatus.OBSOLETE
        t1.refresh_from_db()
        assert "Overtaken by the later notice (retirement day)" in t1.status_reason
        services.notices_plan()
        outcomes = send_all()
    assert outcomes == {Milestone.RETIREMENT_DAY: NoticeStatus.SENT}
    assert not any("tomorrow" in m.subject for m in mail.outbox)
    assert mail.outbox[-1].subject == f"[Acme] Late notice: {retiring.name} retired on 20 March 2031"


def test_the_planner_folds_missed_reminders_into_the_next_milestone():
    dates = ms.snapshot_milestones(
        deprecated_at=RETIRES - dt.timedelta(days=60), retires_at=RETIRES, min_notice_days=30
    )
    due = ms.due(dates, now=RETIRES + dt.timedelta(days=21), catch_up=dt.timedelta(days=30))
    assert [m.milestone for m in due] == [ms.RETIREMENT_DAY]


def test_extended_support_bought_after_planning_postpones_the_reminder(world, retiring):
    with time_machine.travel(RETIRES - dt.timedelta(days=7), tick=False):
        services.notices_plan()
        t7 = Notice.objects.get(snapshot=retiring, milestone=Milestone.T_7, channel=Channel.EMAIL)
        ExtendedSupport.objects.create(
            organization=world.org,
            snapshot=retiring,
            starts_at=timezone.now(),
            until=RETIRES + dt.timedelta(days=90),
        )
        assert tasks.send_notice.apply(args=[t7.pk]).get() == NoticeStatus.PENDING
    t7.refresh_from_db()
    assert t7.status == NoticeStatus.PENDING
    assert t7.due_at == RETIRES + dt.timedelta(days=83)
    assert "rescheduled" in t7.status_reason
    with time_machine.travel(RETIRES + dt.timedelta(days=83), tick=False):
        assert tasks.send_notice.apply(args=[t7.pk]).get() == NoticeStatus.SENT
    assert mail.outbox[-1].subject == f"[Acme] {retiring.name} retires in 7 days (18 June 2031)"
    assert "Your extended support ends: 18 Jun 2031, 12:00 UTC" in mail.outbox[-1].body


def test_a_snapshot_notice_for_a_pin_that_moved_off_is_not_sent(world, retiring):
    from contracts.pins import services as pins

    with time_machine.travel(RETIRES - dt.timedelta(days=30), tick=False):
        services.notices_plan()
        pending = Notice.objects.filter(snapshot=retiring, channel=Channel.EMAIL, status=NoticeStatus.PENDING)
        assert pending.exists()
        pins.pin_set(org=world.org, alias=world.alias, snapshot=world.current)
        for notice in pending:
            assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.OBSOLETE
    assert mail.outbox == []


def test_a_follow_move_notice_is_sent_once(world):
    from django.core.management import call_command

    from contracts.catalog import services as catalog

    newest = f.SnapshotFactory(family=world.family, name="chat-new", released_at=f.days(-1))
    catalog.alias_move(alias=world.alias, to_snapshot=newest, reason="quality")
    notice = Notice.objects.get(organization=world.other_org, kind="pin-moved", channel=Channel.EMAIL)
    assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.SENT
    call_command("run_notices")
    to_globex = [m.subject for m in mail.outbox if m.to == [world.outsider.email]]
    assert to_globex == [f"[Globex] v1-chat now serves {newest.name}: your pin followed the alias"]
