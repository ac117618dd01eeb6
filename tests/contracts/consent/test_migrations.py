from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from contracts.catalog import services as catalog
from contracts.consent import selectors, services, tasks
from contracts.errors import ApplicationError, Conflict, Forbidden
from contracts.instants import instant_words
from contracts.ledger.verify import ledger_verify
from contracts.models import (
    ConsentRecord,
    ExtendedSupport,
    LedgerAction,
    Migration,
    MigrationOrigin,
    MigrationState,
    PinChange,
    Role,
    Snapshot,
    UpgradePolicy,
)
from tests import factories as f
from tests.contracts.ledger_helpers import accept, counts, decider, make_terms, propose


def retire(snapshot: Snapshot, *, at: dt.datetime) -> None:
    Snapshot.objects.filter(pk=snapshot.pk).update(deprecated_at=at - dt.timedelta(days=100), retires_at=at)
    snapshot.refresh_from_db()


# --- proposing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deadline_is_the_retirement_of_the_snapshot_being_left(world):
    retire(world.old, at=f.days(40))
    migration = propose(world)
    assert migration.deadline == world.old.retires_at
    assert migration.state == MigrationState.PROPOSED


@pytest.mark.django_db
def test_without_a_retirement_date_a_migration_has_no_deadline(world):
    assert propose(world).deadline is None


@pytest.mark.django_db
def test_alias_move_proposes_migrations_for_manual_and_on_retirement_pins_only(world):
    newest = f.SnapshotFactory(family=world.family, name="chat-2025-09-01", released_at=f.days(-5))
    third = f.OrganizationFactory(slug="initech")
    f.make_pin(org=third, alias=world.alias, snapshot=world.old, policy=UpgradePolicy.ON_RETIREMENT)
    catalog.alias_move(alias=world.alias, to_snapshot=newest, reason="quality")
    proposed = Migration.objects.filter(to_snapshot=newest, origin=MigrationOrigin.ALIAS_MOVE)
    assert {m.organization.slug for m in proposed} == {"acme", "initech"}
    # The follow pin of globex moved with the alias instead.
    assert world.other_org.pins.get().snapshot == newest


@pytest.mark.django_db
def test_a_later_alias_move_supersedes_an_undecided_proposal(world):
    first = propose(world)
    newest = f.SnapshotFactory(family=world.family, name="chat-2025-09-01", released_at=f.days(-5))
    catalog.alias_move(alias=world.alias, to_snapshot=newest, reason="quality")
    first.refresh_from_db()
    assert first.state == MigrationState.CANCELLED
    assert Migration.objects.get(pin=world.pin, state=MigrationState.PROPOSED).to_snapshot == newest


@pytest.mark.django_db
def test_staff_proposal_while_another_is_open_is_a_conflict(world):
    propose(world)
    newest = f.SnapshotFactory(family=world.family, name="chat-2025-09-01", released_at=f.days(-5))
    with pytest.raises(Conflict):
        services.migration_propose(pin=world.pin, to_snapshot=newest)
    assert Migration.objects.count() == 1


# --- consent ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_consent_now_moves_the_pin_through_pin_set_and_writes_exactly_one_record(world):
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    migration = propose(world)
    changes_before = PinChange.objects.filter(pin=world.pin).count()
    record = services.migration_consent(migration=migration, decider=decider(world.admin))
    migration.refresh_from_db()
    world.pin.refresh_from_db()
    assert migration.state == MigrationState.APPLIED and migration.applied_at == record.created_at
    assert world.pin.snapshot == world.current
    change = PinChange.objects.filter(pin=world.pin).order_by("-id").first()
    assert PinChange.objects.filter(pin=world.pin).count() == changes_before + 1
    assert (change.from_snapshot, change.to_snapshot, change.actor) == (world.old, world.current, world.admin)
    assert ConsentRecord.objects.filter(migration=migration).count() == 1
    assert record.action == LedgerAction.CONSENT
    assert (record.from_snapshot, record.to_snapshot) == (world.old.name, world.current.name)
    assert (record.terms_version, record.terms_sha256) == ("2025-09", terms.body_sha256)
    assert record.diff_sha256 == selectors.diff_sha256(
        org=world.org, from_snapshot=world.old, to_snapshot=world.current
    )
    assert len(record.diff_sha256) == 64
    assert (record.actor_email, record.ip, record.user_agent) == (
        world.admin.email,
        "198.51.100.7",
        "pytest-agent/1.0",
    )
    assert ledger_verify(org=world.org).intact


@pytest.mark.django_db
def test_scheduled_consent_waits_for_the_beat_then_applies_as_a_system_action(world):
    retire(world.old, at=f.days(40))
    migration = propose(world)
    when = f.days(3)
    services.migration_consent(migration=migration, decider=decider(world.admin), scheduled_for=when)
    migration.refresh_from_db()
    assert migration.state == MigrationState.CONSENTED and migration.scheduled_for == when
    assert world.pin.snapshot == world.old
    assert services.migrations_apply_due(at=f.days(1)) == []
    assert services.migrations_apply_due(at=f.days(4)) == [migration.pk]
    assert services.migrations_apply_due(at=f.days(5)) == []  # a second run records nothing more
    migration.refresh_from_db()
    world.pin.refresh_from_db()
    assert migration.state == MigrationState.APPLIED
    assert world.pin.snapshot == world.current
    actions = list(ConsentRecord.objects.filter(migration=migration).values_list("action", "actor_email"))
    assert actions == [(LedgerAction.CONSENT, world.admin.email), (LedgerAction.APPLY, "system")]


@pytest.mark.django_db
def test_the_beat_task_applies_due_scheduled_consents(world, time_machine):
    migration = propose(world)
    services.migration_consent(migration=migration, decider=decider(world.admin), scheduled_for=f.days(1))
    time_machine.move_to(f.days(2))
    assert tasks.apply_scheduled_consents.delay().get() == [migration.pk]
    migration.refresh_from_db()
    assert migration.state == MigrationState.APPLIED


@pytest.mark.django_db
def test_consent_scheduled_past_the_deadline_is_refused_and_writes_nothing(world):
    retire(world.old, at=f.days(10))
    migration = propose(world)
    before = counts(world.org)
    with pytest.raises(ApplicationError) as refused:
        services.migration_consent(
            migration=migration, decider=decider(world.admin), scheduled_for=f.days(11)
        )
    assert refused.value.status_code == 400
    assert "deadline" in refused.value.fields["at"]
    assert counts(world.org) == before
    migration.refresh_from_db()
    assert migration.state == MigrationState.PROPOSED


# --- defer / decline --------------------------------------------------------------------------


@pytest.mark.django_db
def test_defer_within_the_terms_records_the_date(world):
    accept(world.org, make_terms("2025-09", max_deferral_days=30), world.admin)
    migration = propose(world)
    record = services.migration_defer(migration=migration, decider=decider(world.admin), until=f.days(20))
    migration.refresh_from_db()
    assert migration.state == MigrationState.DEFERRED
    assert record.action == LedgerAction.DEFER and record.details["deferred_until"]
    assert world.pin.snapshot == world.old


@pytest.mark.django_db
def test_defer_past_the_contract_limit_is_refused_naming_the_limit_and_writes_nothing(world):
    accept(world.org, make_terms("2025-09", max_deferral_days=30), world.admin)
    migration = propose(world)
    before = counts(world.org)
    with pytest.raises(ApplicationError) as refused:
        services.migration_defer(migration=migration, decider=decider(world.admin), until=f.days(45))
    assert refused.value.status_code == 400
    assert "your terms 2025-09 allow 30 days after the proposal" in refused.value.fields["until"]
    assert "max_deferral_days" not in refused.value.message
    assert counts(world.org) == before
    migration.refresh_from_db()
    assert migration.state == MigrationState.PROPOSED


@pytest.mark.django_db
def test_defer_is_never_allowed_past_the_deadline(world):
    retire(world.old, at=f.days(10))
    migration = propose(world)
    with pytest.raises(ApplicationError) as refused:
        services.migration_defer(migration=migration, decider=decider(world.admin), until=f.days(20))
    assert "deadline" in refused.value.fields["until"]


@pytest.mark.django_db
def test_decline_keeps_the_pin_and_closes_the_proposal(world):
    migration = propose(world)
    record = services.migration_decline(migration=migration, decider=decider(world.admin))
    migration.refresh_from_db()
    world.pin.refresh_from_db()
    assert migration.state == MigrationState.DECLINED
    assert world.pin.snapshot == world.old
    assert record.action == LedgerAction.DECLINE


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("decide", ["consent", "defer", "decline"])
def test_deciding_an_already_decided_migration_is_a_conflict_and_writes_nothing(world, decide):
    migration = propose(world)
    services.migration_decline(migration=migration, decider=decider(world.admin))
    before = counts(world.org)
    kwargs = {"until": f.days(5)} if decide == "defer" else {}
    with pytest.raises(Conflict):
        getattr(services, f"migration_{decide}")(migration=migration, decider=decider(world.admin), **kwargs)
    assert counts(world.org) == before


@pytest.mark.django_db
def test_deciding_an_expired_migration_is_a_conflict_and_writes_nothing(world):
    retire(world.old, at=f.days(5))
    migration = propose(world)
    before = counts(world.org)
    with pytest.raises(Conflict) as refused:
        services.migration_consent(migration=migration, decider=decider(world.admin), at=f.days(6))
    assert "deadline" in refused.value.fields
    assert counts(world.org) == before


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MEMBER, Role.LEGAL])
def test_members_and_legal_cannot_decide(world, role):
    migration = propose(world)
    before = counts(world.org)
    for decide in (services.migration_consent, services.migration_decline):
        with pytest.raises(Forbidden):
            decide(migration=migration, decider=decider(world.member, role=role))
    with pytest.raises(Forbidden):
        services.migration_defer(
            migration=migration, decider=decider(world.legal, role=role), until=f.days(3)
        )
    assert counts(world.org) == before


@pytest.mark.django_db
def test_a_decision_against_terms_that_changed_since_the_confirmation_is_a_conflict(world):
    accept(world.org, make_terms("2025-09"), world.admin)
    migration = propose(world)
    before = counts(world.org)
    with pytest.raises(Conflict):
        services.migration_consent(
            migration=migration, decider=decider(world.admin), expected_terms_sha256="0" * 64
        )
    assert counts(world.org) == before


# --- rollback ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rollback_within_the_window_moves_the_pin_back(world):
    accept(world.org, make_terms("2025-09", rollback_window_hours=24), world.admin)
    migration = propose(world)
    applied = timezone.now()
    services.migration_consent(migration=migration, decider=decider(world.admin), at=applied)
    record = services.migration_rollback(
        migration=migration, decider=decider(world.admin), at=applied + dt.timedelta(hours=23)
    )
    migration.refresh_from_db()
    world.pin.refresh_from_db()
    assert migration.state == MigrationState.ROLLED_BACK
    assert world.pin.snapshot == world.old
    assert (record.action, record.from_snapshot, record.to_snapshot) == (
        LedgerAction.ROLLBACK,
        world.current.name,
        world.old.name,
    )
    assert ledger_verify(org=world.org).intact


@pytest.mark.django_db
def test_rollback_after_the_window_is_a_conflict_with_the_window_end_and_writes_nothing(world):
    accept(world.org, make_terms("2025-09", rollback_window_hours=24), world.admin)
    migration = propose(world)
    applied = timezone.now()
    services.migration_consent(migration=migration, decider=decider(world.admin), at=applied)
    before = counts(world.org)
    with pytest.raises(Conflict) as refused:
        services.migration_rollback(
            migration=migration, decider=decider(world.admin), at=applied + dt.timedelta(hours=25)
        )
    window_end = instant_words(applied + dt.timedelta(hours=24))  # in words, to the minute
    assert refused.value.fields["window_end"] == f"Closed on {window_end}."
    assert window_end in refused.value.message
    assert counts(world.org) == before


@pytest.mark.django_db
def test_only_an_applied_migration_can_be_rolled_back(world):
    migration = propose(world)
    with pytest.raises(Conflict):
        services.migration_rollback(migration=migration, decider=decider(world.admin))
    assert ConsentRecord.objects.count() == 0


# --- forced at retirement ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("deferred", [False, True])
def test_undecided_migrations_are_forced_at_retirement_as_a_system_action(
    world, deferred, django_capture_on_commit_callbacks
):
    retire(world.old, at=f.days(30))
    migration = propose(world)
    if deferred:
        services.migration_defer(migration=migration, decider=decider(world.admin), until=f.days(10))
    mail.outbox.clear()
    assert services.migrations_force_due(at=f.days(29)) == []
    with django_capture_on_commit_callbacks(execute=True):
        forced = services.migrations_force_due(at=f.days(31))
    assert forced == [migration.pk]
    migration.refresh_from_db()
    world.pin.refresh_from_db()
    assert migration.state == MigrationState.FORCED
    assert world.pin.snapshot == world.current
    record = ConsentRecord.objects.get(migration=migration, action=LedgerAction.FORCED)
    assert record.actor is None and record.actor_email == "system"
    # The organisation is told through the notification outbox (planned once, e-mail and webhook).
    from notifications.models import Notice
    from notifications.services import notices_plan

    notices_plan(at=f.days(31))
    notices_plan(at=f.days(31))
    told = Notice.objects.filter(
        organization=world.org, migration=migration, milestone="forced-migration-applied"
    )
    assert told.filter(channel="email").count() == 1
    assert services.migrations_force_due(at=f.days(32)) == []


@pytest.mark.django_db
def test_organisations_with_extended_support_are_not_forced(world):
    retire(world.old, at=f.days(30))
    migration = propose(world)
    ExtendedSupport.objects.create(organization=world.org, snapshot=world.old, until=f.days(120))
    assert services.migrations_force_due(at=f.days(31)) == []
    migration.refresh_from_db()
    assert migration.state == MigrationState.PROPOSED
    assert counts(world.org)[0] == 0


@pytest.mark.django_db
def test_cancelled_or_expired_extended_support_does_not_prevent_the_forced_move(world):
    retire(world.old, at=f.days(30))
    migration = propose(world)
    ExtendedSupport.objects.create(organization=world.org, snapshot=world.old, until=f.days(31))
    ExtendedSupport.objects.create(
        organization=world.org, snapshot=world.old, until=f.days(300), cancelled_at=f.days(1)
    )
    assert services.migrations_force_due(at=f.days(32)) == [migration.pk]


@pytest.mark.django_db
def test_declined_migrations_are_not_forced(world):
    retire(world.old, at=f.days(30))
    migration = propose(world)
    services.migration_decline(migration=migration, decider=decider(world.admin))
    assert services.migrations_force_due(at=f.days(31)) == []


# --- staff console and demo data --------------------------------------------------------------


@pytest.mark.django_db
def test_staff_propose_a_migration_in_the_admin(world, admin_client):
    response = admin_client.post(
        "/admin/contracts/migration/add/",
        {
            "pin": world.pin.pk,
            "to_snapshot": world.current.pk,
            "note": "Please move before the price change.",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    migration = Migration.objects.get(pin=world.pin)
    assert (migration.origin, migration.state, migration.to_snapshot) == (
        MigrationOrigin.STAFF,
        MigrationState.PROPOSED,
        world.current,
    )
    assert migration.note == "Please move before the price change."


@pytest.mark.django_db
def test_the_admin_propose_action_offers_a_closed_migration_again(world, admin_client):
    migration = propose(world)
    services.migration_decline(migration=migration, decider=decider(world.admin))
    admin_client.post(
        "/admin/contracts/migration/", {"action": "propose", "_selected_action": [migration.pk]}
    )
    assert Migration.objects.filter(pin=world.pin, state=MigrationState.PROPOSED).count() == 1


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_leaves_intact_chains():
    from contracts.catalog.demo import seed_catalog
    from contracts.consent.demo import seed_terms_and_migrations
    from contracts.models import Organization
    from contracts.pins.demo import seed_pins
    from contracts.tenancy.demo import seed_organizations

    for _ in range(2):
        seed_catalog()
        seed_organizations()
        seed_pins()
        seed_terms_and_migrations()
    acme = Organization.objects.get(slug="acme")
    states = sorted(Migration.objects.filter(organization=acme).values_list("state", flat=True))
    assert states == [MigrationState.APPLIED, MigrationState.DEFERRED, MigrationState.PROPOSED]
    assert selectors.terms_pending(org=Organization.objects.get(slug="initech")).version == "2025-09"
    assert selectors.terms_pending(org=acme) is None
    for org in Organization.objects.all():
        assert ledger_verify(org=org).intact
    assert ConsentRecord.objects.filter(organization=acme).count() == 4


@pytest.mark.django_db
def test_a_refused_admin_proposal_shows_the_reason_and_creates_nothing(world, admin_client):
    response = admin_client.post(
        "/admin/contracts/migration/add/",
        {"pin": world.pin.pk, "to_snapshot": world.old.pk, "note": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert "already on" in response.content.decode()
    assert Migration.objects.count() == 0
