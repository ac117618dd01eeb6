"""Lifecycle rules of every move (issue #13, item 1): no alias move, pin change or migration onto a
snapshot that is purged, retired, in another family or not yet released; every pin move that no
migration decision records writes a ledger record the customer sees and one notice."""

from __future__ import annotations

import pytest

from contracts.catalog import services as catalog_services
from contracts.consent import services as consent_services
from contracts.errors import ApplicationError, Conflict
from contracts.models import (
    AliasMove,
    ConsentRecord,
    LedgerAction,
    Migration,
    PinChange,
    UpgradePolicy,
)
from contracts.pins import services as pins_services
from notifications.models import Channel, Notice
from tests import factories as f

pytestmark = pytest.mark.django_db


def _state(world):
    return (
        AliasMove.objects.count(),
        PinChange.objects.count(),
        ConsentRecord.objects.count(),
        Migration.objects.count(),
        Notice.objects.count(),
    )


@pytest.fixture
def purged(world):
    return f.SnapshotFactory(
        family=world.family,
        name="chat-purged",
        released_at=f.days(-400),
        deprecated_at=f.days(-300),
        retires_at=f.days(-200),
        retention_until=f.days(-10),
    )


@pytest.fixture
def retired(world):
    return f.SnapshotFactory(
        family=world.family,
        name="chat-retired",
        released_at=f.days(-400),
        deprecated_at=f.days(-300),
        retires_at=f.days(-20),
        retention_until=f.days(200),
    )


@pytest.fixture
def unreleased(world):
    return f.SnapshotFactory(family=world.family, name="chat-preview", released_at=f.days(5))


@pytest.fixture
def foreign():
    return f.SnapshotFactory(family=f.FamilyFactory(slug="embed"), name="embed-2025")


@pytest.mark.parametrize(
    ("target", "error", "words"),
    [
        ("purged", Conflict, "purged"),
        ("retired", Conflict, "retired"),
        ("unreleased", ApplicationError, "not released until"),
        ("foreign", ApplicationError, "not a snapshot of the chat family"),
    ],
)
def test_alias_move_onto_a_snapshot_that_cannot_serve_is_refused_and_writes_nothing(
    world, request, target, error, words
):
    snapshot = request.getfixturevalue(target)
    before = _state(world)
    with pytest.raises(error) as exc:
        catalog_services.alias_move(alias=world.alias, to_snapshot=snapshot, reason="oops")
    assert words in exc.value.message
    assert "to_snapshot" in exc.value.fields
    assert _state(world) == before
    world.alias.refresh_from_db()
    assert world.alias.target == world.current


@pytest.mark.parametrize("target", ["purged", "retired", "unreleased", "foreign"])
def test_pin_change_and_migration_onto_such_a_snapshot_are_refused(world, request, target):
    snapshot = request.getfixturevalue(target)
    before = _state(world)
    with pytest.raises(ApplicationError) as exc:
        pins_services.pin_set(org=world.org, alias=world.alias, snapshot=snapshot)
    assert "snapshot" in exc.value.fields
    with pytest.raises(ApplicationError) as exc:
        consent_services.migration_propose(pin=world.pin, to_snapshot=snapshot)
    assert "to_snapshot" in exc.value.fields
    assert _state(world) == before


def test_refusals_name_dates_in_words_without_microseconds(world, purged):
    with pytest.raises(Conflict) as exc:
        catalog_services.alias_move(alias=world.alias, to_snapshot=purged, reason="x")
    day = purged.retention_until
    assert f"purged on {day.day} {day:%B %Y}" in exc.value.message
    assert day.isoformat()[:10] not in exc.value.message
    assert exc.value.fields["to_snapshot"] == f"Purged on {day.day} {day:%B %Y}."


def test_a_retired_snapshot_stays_reachable_for_an_organisation_with_extended_support(world, retired):
    from contracts.models import ExtendedSupport

    ExtendedSupport.objects.create(
        organization=world.org, snapshot=retired, starts_at=f.days(-30), until=f.days(30)
    )
    pin = pins_services.pin_set(org=world.org, alias=world.alias, snapshot=retired)
    assert pin.snapshot == retired
    with pytest.raises(Conflict):
        pins_services.pin_set(org=world.other_org, alias=world.alias, snapshot=retired)


def test_a_follow_pin_moving_with_its_alias_writes_a_ledger_record_and_one_notice(world):
    newest = f.SnapshotFactory(family=world.family, name="chat-new", released_at=f.days(-1))
    staff = f.UserFactory(username="vendor-staff", is_staff=True)
    catalog_services.alias_move(alias=world.alias, to_snapshot=newest, reason="quality", acting_user=staff)
    record = ConsentRecord.objects.get(organization=world.other_org)
    assert record.action == LedgerAction.FOLLOW
    assert (record.from_snapshot, record.to_snapshot) == (world.current.name, newest.name)
    assert record.actor_email == "system"
    assert record.details["alias"] == "v1-chat" and record.details["initiated_by"] == staff.email
    assert record.details["policy"] == UpgradePolicy.FOLLOW
    notices = Notice.objects.filter(organization=world.other_org, channel=Channel.EMAIL)
    assert notices.count() == 1
    notice = notices.get()
    assert notice.kind == "pin-moved" and newest.name in notice.subject
    assert f"record #{record.seq}" in notice.body
    # The manual pin of the other organisation is offered a migration, not moved nor told a move.
    assert not ConsentRecord.objects.filter(organization=world.org).exists()
    assert not Notice.objects.filter(organization=world.org, kind="pin-moved").exists()
    assert Migration.objects.filter(pin=world.pin, to_snapshot=newest).exists()


def test_a_vendor_move_of_a_pin_is_recorded_in_the_customer_ledger(world):
    pins_services.pin_set(
        org=world.org,
        alias=world.alias,
        snapshot=world.current,
        reason="set by staff",
        ledger_action=LedgerAction.STAFF_MOVE,
    )
    record = ConsentRecord.objects.get(organization=world.org)
    assert record.action == LedgerAction.STAFF_MOVE and record.to_snapshot == world.current.name
    assert Notice.objects.filter(organization=world.org, kind="pin-moved", channel=Channel.EMAIL).count() == 1


def test_a_follow_pin_subscribed_to_pin_moved_gets_one_webhook_too(world, settings):
    from notifications.models import WebhookEndpoint

    settings.WEBHOOKS_ALLOW_PRIVATE = True
    WebhookEndpoint.objects.create(
        organization=world.other_org, url="http://127.0.0.1:9/hook", events=["pin.moved"], secret="whsec_x"
    )
    newest = f.SnapshotFactory(family=world.family, name="chat-new", released_at=f.days(-1))
    catalog_services.alias_move(alias=world.alias, to_snapshot=newest, reason="quality")
    hooks = Notice.objects.filter(organization=world.other_org, channel=Channel.WEBHOOK)
    assert hooks.count() == 1 and hooks.get().kind == "pin.moved"


def test_forced_migration_onto_a_target_purged_meanwhile_is_refused_not_half_done(world, purged):
    migration = consent_services.migration_propose(pin=world.pin, to_snapshot=world.current)
    Migration.objects.filter(pk=migration.pk).update(to_snapshot=purged)
    migration.refresh_from_db()
    with pytest.raises(Conflict):
        consent_services.migration_consent(
            migration=migration, decider=consent_services.Decider(user=world.admin, role="admin")
        )
    world.pin.refresh_from_db()
    assert world.pin.snapshot == world.old
    assert not ConsentRecord.objects.filter(organization=world.org).exists()
