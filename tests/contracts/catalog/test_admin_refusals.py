"""The staff console shows a service's refusal as a form error on the same form, with what was
typed kept and nothing saved (never beside "changed successfully"); alias targets are limited to
the alias's family; the console names its time zone."""

from __future__ import annotations

import pytest
from django.utils import timezone

from contracts.models import AliasMove, ConsentRecord, LedgerAction, PinChange
from tests import factories as f
from tests.contracts.ledger_helpers import accept, make_terms

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = f.UserFactory(username="vendor-ops", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def _alias_form(alias, target):
    return {"target": target.pk, "description": alias.description}


def test_moving_an_alias_onto_a_purged_snapshot_is_a_form_error_and_changes_nothing(world, staff_client):
    purged = f.SnapshotFactory(
        family=world.family,
        name="chat-purged",
        released_at=f.days(-400),
        deprecated_at=f.days(-300),
        retires_at=f.days(-200),
        retention_until=f.days(-10),
    )
    moves = AliasMove.objects.count()
    response = staff_client.post(
        f"/admin/contracts/alias/{world.alias.pk}/change/", _alias_form(world.alias, purged)
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "was purged on" in page
    assert "changed successfully" not in page
    assert f'<option value="{purged.pk}" selected>' in page  # what was typed is kept
    assert AliasMove.objects.count() == moves
    world.alias.refresh_from_db()
    assert world.alias.target == world.current


def test_the_alias_target_list_offers_only_the_alias_family(world, staff_client):
    other = f.SnapshotFactory(family=f.FamilyFactory(slug="embed"), name="embed-2025")
    page = staff_client.get(f"/admin/contracts/alias/{world.alias.pk}/change/").content.decode()
    assert world.current.name in page and world.old.name in page
    assert other.name not in page
    # A forged POST of another family's snapshot is refused by the form's field.
    response = staff_client.post(
        f"/admin/contracts/alias/{world.alias.pk}/change/", _alias_form(world.alias, other)
    )
    assert response.status_code == 200 and "changed successfully" not in response.content.decode()


def test_a_retirement_date_refused_by_the_contract_guard_is_a_form_error(world, staff_client):
    accept(world.org, make_terms("std-1", min_notice_days=90), world.admin)
    now = timezone.now()
    soon = now + timezone.timedelta(days=10)
    response = staff_client.post(
        f"/admin/contracts/snapshot/{world.old.pk}/change/",
        {
            "released_at_0": world.old.released_at.strftime("%Y-%m-%d"),
            "released_at_1": world.old.released_at.strftime("%H:%M:%S"),
            "deprecated_at_0": now.strftime("%Y-%m-%d"),
            "deprecated_at_1": now.strftime("%H:%M:%S"),
            "retires_at_0": soon.strftime("%Y-%m-%d"),
            "retires_at_1": soon.strftime("%H:%M:%S"),
            "replacement": world.current.pk,
            "changelog-TOTAL_FORMS": 0,
            "changelog-INITIAL_FORMS": 0,
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "gives too little notice" in page and "acme: not before" in page
    assert "changed successfully" not in page
    assert soon.strftime("%Y-%m-%d") in page  # the typed date is kept
    world.old.refresh_from_db()
    assert world.old.retires_at is None


def test_a_staff_move_of_a_pin_is_recorded_for_the_customer(world, staff_client):
    response = staff_client.post(
        f"/admin/contracts/pin/{world.pin.pk}/change/",
        {"snapshot": world.current.pk, "policy": world.pin.policy},
    )
    assert response.status_code == 302
    world.pin.refresh_from_db()
    assert world.pin.snapshot == world.current
    assert ConsentRecord.objects.get(organization=world.org).action == LedgerAction.STAFF_MOVE
    assert PinChange.objects.filter(pin=world.pin, to_snapshot=world.current).exists()


def test_the_console_names_its_time_zone(staff_client):
    assert "Every time on these pages is in UTC" in staff_client.get("/admin/").content.decode()
