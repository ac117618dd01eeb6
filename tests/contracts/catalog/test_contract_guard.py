from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.contrib import admin as django_admin
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.utils import timezone

from contracts.admin import SnapshotAdmin
from contracts.catalog import services
from contracts.errors import Conflict
from contracts.models import Migration, MigrationOrigin, MigrationState, Snapshot, UpgradePolicy
from tests import factories as f
from tests.contracts.ledger_helpers import accept, make_terms


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def guarded(world):
    """acme on 90 days' notice, initech (enterprise) on 180, both pinned to world.old."""
    accept(world.org, make_terms("std-1", min_notice_days=90), world.admin)
    initech = f.OrganizationFactory(slug="initech", tier="enterprise")
    initech_admin = f.MembershipFactory(organization=initech, user__username="initech-admin").user
    accept(initech, make_terms("ent-1", tier="enterprise", min_notice_days=180), initech_admin)
    f.make_pin(org=initech, alias=world.alias, snapshot=world.old, policy=UpgradePolicy.ON_RETIREMENT)
    Snapshot.objects.filter(pk=world.old.pk).update(replacement=world.current)
    world.old.refresh_from_db()
    return SimpleNamespace(world=world, initech=initech)


def lifecycle(snapshot, *, retires_in: int, now: dt.datetime):
    return services.snapshot_lifecycle_set(
        snapshot=snapshot,
        deprecated_at=now,
        retires_at=now + dt.timedelta(days=retires_in),
        retention_until=now + dt.timedelta(days=retires_in + 365),
        replacement=snapshot.replacement,
        at=now,
    )


@pytest.mark.django_db
def test_too_short_notice_is_refused_listing_each_organisation_and_its_earliest_lawful_date(guarded):
    world, now = guarded.world, timezone.now()
    with pytest.raises(Conflict) as refused:
        lifecycle(world.old, retires_in=60, now=now)
    organizations = refused.value.fields["organizations"]
    assert organizations == {
        "acme": iso(now + dt.timedelta(days=90)),
        "initech": iso(now + dt.timedelta(days=180)),
    }
    assert refused.value.code == "contract_guard"
    assert "acme" in refused.value.message and "initech" in refused.value.message
    world.old.refresh_from_db()
    assert (world.old.deprecated_at, world.old.retires_at) == (None, None)
    assert Migration.objects.count() == 0


@pytest.mark.django_db
def test_only_organisations_short_of_notice_are_listed(guarded):
    with pytest.raises(Conflict) as refused:
        lifecycle(guarded.world.old, retires_in=120, now=timezone.now())
    assert list(refused.value.fields["organizations"]) == ["initech"]


@pytest.mark.django_db
def test_lawful_deprecation_sets_the_dates_and_proposes_the_replacement_to_manual_and_on_retirement_pins(
    guarded,
):
    world, now = guarded.world, timezone.now()
    updated = lifecycle(world.old, retires_in=200, now=now)
    assert updated.retires_at == now + dt.timedelta(days=200)
    migrations = Migration.objects.filter(from_snapshot=world.old, origin=MigrationOrigin.DEPRECATION)
    assert {m.organization.slug for m in migrations} == {"acme", "initech"}
    assert {m.to_snapshot for m in migrations} == {world.current}
    assert {m.deadline for m in migrations} == {updated.retires_at}
    assert all(m.state == MigrationState.PROPOSED for m in migrations)


@pytest.mark.django_db
def test_moving_retirement_later_is_not_guarded_and_moves_open_deadlines(guarded):
    world, now = guarded.world, timezone.now()
    lifecycle(world.old, retires_in=200, now=now)
    later = now + dt.timedelta(days=400)
    services.snapshot_lifecycle_set(
        snapshot=world.old,
        deprecated_at=now,
        retires_at=later,
        retention_until=later,
        replacement=world.current,
        at=now + dt.timedelta(days=150),
    )
    assert set(Migration.objects.values_list("deadline", flat=True)) == {later}


@pytest.mark.django_db
def test_snapshots_nobody_is_pinned_to_may_retire_at_once(world):
    lonely = f.SnapshotFactory(family=world.family, name="chat-lonely", released_at=f.days(-10))
    now = timezone.now()
    updated = services.snapshot_lifecycle_set(
        snapshot=lonely,
        deprecated_at=now,
        retires_at=now + dt.timedelta(days=1),
        retention_until=None,
        replacement=None,
        at=now,
    )
    assert updated.retires_at == now + dt.timedelta(days=1)


@pytest.mark.django_db
def test_the_staff_console_snapshot_form_goes_through_the_guard(guarded, admin_user):
    world, now = guarded.world, timezone.now()
    request = RequestFactory().post("/admin/contracts/snapshot/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)
    form = SimpleNamespace(
        changed_data=["deprecated_at", "retires_at"],
        cleaned_data={
            "deprecated_at": now,
            "retires_at": now + dt.timedelta(days=10),
            "retention_until": None,
            "replacement": world.current,
        },
    )
    SnapshotAdmin(Snapshot, django_admin.site).save_model(request, world.old, form, change=True)
    shown = [str(m) for m in request._messages]
    assert any("acme" in m and "initech" in m for m in shown)
    world.old.refresh_from_db()
    assert world.old.retires_at is None
