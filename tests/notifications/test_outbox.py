"""The outbox: planning is idempotent, a notice is claimed by one sender at a time, a crashed claim
is taken over after its lease, failures retry with backoff below the broker's visibility timeout."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from contracts.ledger.chain import ledger_append
from contracts.models import LedgerAction, Migration, MigrationState
from notifications import services, tasks
from notifications.models import Channel, Milestone, Notice, NoticeStatus
from tests import factories as f
from tests.conftest import requires_postgres
from tests.notifications.conftest import accept_terms, deprecate

pytestmark = pytest.mark.django_db


@pytest.fixture
def deprecated(world):
    accept_terms(world.org, min_notice_days=90)
    return deprecate(world.old, deprecated_at=f.days(-1), retires_at=f.days(200), replacement=world.current)


def test_planning_twice_inserts_each_notice_once(world, deprecated):
    assert services.notices_plan() == 1
    assert services.notices_plan() == 0
    notice = Notice.objects.get()
    assert (notice.organization, notice.snapshot, notice.milestone, notice.channel) == (
        world.org,
        world.old,
        Milestone.DEPRECATION_ANNOUNCED,
        Channel.EMAIL,
    )
    assert notice.legal is True


def test_the_database_refuses_a_second_notice_for_the_same_milestone_and_channel(world, deprecated):
    from django.db import IntegrityError, transaction

    services.notices_plan()
    with pytest.raises(IntegrityError), transaction.atomic():
        Notice.objects.create(
            organization=world.org,
            snapshot=world.old,
            milestone=Milestone.DEPRECATION_ANNOUNCED,
            channel=Channel.EMAIL,
        )


def test_webhook_notices_are_planned_only_for_subscribed_events(world, deprecated, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    services.webhook_endpoint_create(org=world.org, url="http://127.0.0.1:9/x", events=["migration.proposed"])
    services.notices_plan()
    assert not Notice.objects.filter(channel=Channel.WEBHOOK).exists()
    services.webhook_endpoint_create(
        org=world.org, url="http://127.0.0.1:9/y", events=["snapshot.deprecated"]
    )
    services.notices_plan()
    assert (
        Notice.objects.filter(channel=Channel.WEBHOOK, milestone=Milestone.DEPRECATION_ANNOUNCED).count() == 1
    )


def test_migration_milestones_are_planned_per_migration(world):
    Migration.objects.create(
        organization=world.org,
        pin=world.pin,
        from_snapshot=world.old,
        to_snapshot=world.current,
        state=MigrationState.PROPOSED,
        proposed_at=f.days(-10),
        deadline=f.days(3),
    )
    services.notices_plan()
    assert set(Notice.objects.values_list("milestone", flat=True)) == {
        Milestone.MIGRATION_PROPOSED,
        Milestone.DEADLINE_APPROACHING,
    }


def test_history_older_than_the_catch_up_window_is_not_mailed(world, settings):
    settings.NOTICE_CATCH_UP_DAYS = 30
    deprecate(world.old, deprecated_at=f.days(-300), retires_at=f.days(200))
    services.notices_plan()
    assert not Notice.objects.filter(milestone=Milestone.DEPRECATION_ANNOUNCED).exists()


def test_planner_queries_do_not_grow_with_the_number_of_organisations(
    world, deprecated, django_assert_max_num_queries
):
    for i in range(15):
        org = f.OrganizationFactory(slug=f"many{i}")
        f.make_pin(org=org, alias=world.alias, snapshot=world.old)
    with django_assert_max_num_queries(8):
        assert services.notices_plan() == 16


def test_planner_queries_do_not_grow_with_the_number_of_deferrals(world, django_assert_max_num_queries):
    for i in range(10):  # 30 notices: one INSERT even with SQLite's limit of 999 parameters
        org = f.OrganizationFactory(slug=f"deferring{i}")
        pin = f.make_pin(org=org, alias=world.alias, snapshot=world.old)
        migration = Migration.objects.create(
            organization=org, pin=pin, from_snapshot=world.old, to_snapshot=world.current,
            state=MigrationState.DEFERRED, proposed_at=f.days(-3), decided_at=f.days(-1),
            deferred_until=f.days(20),
        )  # fmt: skip
        for days in (-2, -1):  # deferred twice: two records, two notices
            ledger_append(
                org=org, action=LedgerAction.DEFER, migration=migration, from_snapshot=world.old.name,
                to_snapshot=world.current.name, details={"deferred_until": f.days(20).isoformat()}, at=f.days(days),
            )  # fmt: skip
    # The planner's eight queries and one for the deferrals' ledger records, however many.
    with django_assert_max_num_queries(9):
        assert services.notices_plan() == 10 * 3  # migration proposed, and each of the two deferrals
    assert Notice.objects.filter(milestone=Milestone.MIGRATION_DEFERRED).count() == 20


def test_sending_twice_delivers_once(world, deprecated):
    services.notices_plan()
    notice = Notice.objects.get()
    assert tasks.send_notice.apply(args=[notice.pk]).get() == NoticeStatus.SENT
    assert tasks.send_notice.apply(args=[notice.pk]).get() == "not-claimed"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([world.admin.email, world.legal.email])
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT and notice.attempts == 1 and notice.sent_at is not None


def test_dispatch_queues_a_due_notice_once_until_the_requeue_interval_passes(world, deprecated, settings):
    settings.NOTICE_REQUEUE_SECONDS = 600
    services.notices_plan()
    notice = Notice.objects.get()
    assert services.notices_dispatch_claim() == [notice.pk]
    assert services.notices_dispatch_claim() == []
    later = timezone.now() + dt.timedelta(seconds=601)
    assert services.notices_dispatch_claim(at=later) == [notice.pk]


def test_a_live_claim_blocks_others_and_an_expired_lease_is_taken_over(world, deprecated):
    services.notices_plan()
    notice = Notice.objects.get()
    first = services.notice_claim(notice_id=notice.pk, worker="w1")
    assert first is not None
    assert services.notice_claim(notice_id=notice.pk, worker="w2") is None
    assert services.notices_due_ids() == []
    later = timezone.now() + dt.timedelta(seconds=services._setting("NOTICE_LEASE_SECONDS", 300) + 1)
    assert services.notices_due_ids(at=later) == [notice.pk]
    second = services.notice_claim(notice_id=notice.pk, worker="w2", at=later)
    assert second is not None and second.attempts == 2
    # The crashed first claim can no longer mark the notice; only the live one does.
    assert services.notice_mark_done(notice=first, status=NoticeStatus.SENT, sent_to=[]) is False
    assert services.notice_mark_done(notice=second, status=NoticeStatus.SENT, sent_to=["x@y.z"]) is True


def test_a_failing_mail_server_is_retried_with_backoff_then_marked_failed(world, deprecated, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    settings.NOTICE_MAX_ATTEMPTS = 3
    services.notices_plan()
    notice = Notice.objects.get()
    before = timezone.now()
    assert tasks.send_notice.apply(args=[notice.pk]).get() == "retry-scheduled"
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.PENDING and notice.attempts == 1 and notice.last_error
    assert notice.due_at >= before + dt.timedelta(seconds=services.retry_countdown(attempt=0))
    outcomes = []
    for _ in range(2):
        Notice.objects.filter(pk=notice.pk).update(due_at=timezone.now() - dt.timedelta(seconds=1))
        outcomes.append(tasks.send_notice.apply(args=[notice.pk]).get())
    assert outcomes == ["retry-scheduled", "failed"]
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.FAILED and notice.attempts == 3


def test_retry_countdowns_grow_exponentially_and_stay_below_the_visibility_timeout(settings):
    from portal.celery import app

    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    countdowns = [services.retry_countdown(attempt=n) for n in range(20)]
    assert countdowns[1] == 2 * countdowns[0] and countdowns[2] == 4 * countdowns[0]
    assert max(countdowns) < visibility
    longest_task = max(
        app.tasks[name].time_limit or 0
        for name in (
            "notifications.tasks.send_notice",
            "notifications.tasks.deliver_webhook",
            "notifications.tasks.plan_notices",
            "notifications.tasks.dispatch_notices",
        )
    )
    assert longest_task < visibility
    # A live sender is killed by its time limit before its lease can run out.
    assert tasks.SEND_TIME_LIMIT < settings.NOTICE_LEASE_SECONDS < visibility


def test_beat_schedules_the_planner_every_few_minutes(settings):
    entries = {e["task"]: e["schedule"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert entries["notifications.tasks.plan_notices"] <= 600


def test_run_notices_plans_and_sends_what_is_due(world, deprecated, capsys):
    call_command("run_notices")
    assert "planned=1" in capsys.readouterr().out
    assert Notice.objects.get().status == NoticeStatus.SENT
    assert len(mail.outbox) == 2


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_claim_a_notice_exactly_once(world, deprecated):
    services.notices_plan()
    notice = Notice.objects.get()
    barrier = threading.Barrier(2)
    results = []

    def claim(name):
        barrier.wait()
        try:
            results.append(services.notice_claim(notice_id=notice.pk, worker=name))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for r in results if r is not None) == 1
