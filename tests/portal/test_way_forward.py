"""A way forward after a rollback or a decline (issue #13, item 2): a pin left on a deprecated
snapshot with no open migration always shows its options, and each goes through a consent recorded
in the ledger under the terms."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.consent import selectors, services
from contracts.errors import Conflict, Forbidden
from contracts.models import ConsentRecord, LedgerAction, Migration, MigrationOrigin, Snapshot
from tests import factories as f
from tests.contracts.ledger_helpers import accept, decider, make_terms

pytestmark = pytest.mark.django_db


@pytest.fixture
def rolled_back(world):
    """acme consented to old → current, then rolled back: the pin is on `old`, which is deprecated."""
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    Snapshot.objects.filter(pk=world.old.pk).update(
        deprecated_at=f.days(-5), retires_at=f.days(120), replacement=world.current
    )
    world.old.refresh_from_db()
    migration = services.migration_propose(pin=world.pin, to_snapshot=world.current)
    services.migration_consent(migration=migration, decider=decider(world.admin))
    services.migration_rollback(migration=migration, decider=decider(world.admin))
    world.pin.refresh_from_db()
    assert world.pin.snapshot == world.old
    world.terms = terms
    world.migration = migration
    return world


def test_after_a_rollback_the_pin_has_a_way_forward_to_the_newest_active_successor(rolled_back):
    newest = f.SnapshotFactory(family=rolled_back.family, name="chat-2025-10-01", released_at=f.days(-3))
    forward = selectors.way_forward(org=rolled_back.org, pin=rolled_back.pin)
    assert forward.best == newest
    assert [s.name for s in forward.choices] == [newest.name, rolled_back.current.name]
    assert forward.last == rolled_back.migration


def test_the_request_is_a_proposal_consented_through_the_ledger(rolled_back):
    records = ConsentRecord.objects.filter(organization=rolled_back.org).count()
    migration = services.migration_request(
        org=rolled_back.org,
        pin=rolled_back.pin,
        to_snapshot=rolled_back.current,
        decider=decider(rolled_back.admin),
    )
    assert migration.origin == MigrationOrigin.CUSTOMER and migration.is_open
    assert ConsentRecord.objects.filter(organization=rolled_back.org).count() == records
    assert selectors.way_forward(org=rolled_back.org, pin=rolled_back.pin) is None
    record = services.migration_consent(migration=migration, decider=decider(rolled_back.admin))
    assert record.action == LedgerAction.CONSENT and record.terms_version == "2025-09"
    rolled_back.pin.refresh_from_db()
    assert rolled_back.pin.snapshot == rolled_back.current


def test_requests_are_refused_for_members_onto_purged_snapshots_and_with_one_open(rolled_back):
    with pytest.raises(Forbidden):
        services.migration_request(
            org=rolled_back.org,
            pin=rolled_back.pin,
            to_snapshot=rolled_back.current,
            decider=decider(rolled_back.member, role="member"),
        )
    purged = f.SnapshotFactory(
        family=rolled_back.family,
        name="chat-purged",
        released_at=f.days(-400),
        deprecated_at=f.days(-300),
        retires_at=f.days(-200),
        retention_until=f.days(-1),
    )
    with pytest.raises(Conflict):
        services.migration_request(
            org=rolled_back.org, pin=rolled_back.pin, to_snapshot=purged, decider=decider(rolled_back.admin)
        )
    services.migration_request(
        org=rolled_back.org,
        pin=rolled_back.pin,
        to_snapshot=rolled_back.current,
        decider=decider(rolled_back.admin),
    )
    with pytest.raises(Conflict):
        services.migration_request(
            org=rolled_back.org,
            pin=rolled_back.pin,
            to_snapshot=rolled_back.current,
            decider=decider(rolled_back.admin),
        )


def test_a_declined_pin_shows_its_options_on_the_pages(world, client):
    accept(world.org, make_terms("2025-09"), world.admin)
    Snapshot.objects.filter(pk=world.old.pk).update(deprecated_at=f.days(-5), replacement=world.current)
    migration = services.migration_propose(pin=world.pin, to_snapshot=world.current)
    services.migration_decline(migration=migration, decider=decider(world.admin))
    client.force_login(world.admin)
    for url in ("/o/acme/migrations/", f"/o/acme/migrations/{migration.pk}/"):
        html = client.get(url).content.decode()
        assert "A way forward for v1-chat" in html
        assert f"You declined migration #{migration.pk}" in html
        assert f'<option value="{world.current.name}" selected>' in html
    client.force_login(world.member)
    html = client.get("/o/acme/migrations/").content.decode()
    assert "An organisation admin can propose a move" in html and "Propose and review" not in html


def test_proposing_from_the_page_leads_to_the_consent_confirmation(rolled_back, client):
    client.force_login(rolled_back.admin)
    response = client.post(
        f"/o/acme/pins/{rolled_back.pin.pk}/propose/", {"to_snapshot": rolled_back.current.name}
    )
    migration = Migration.objects.get(pin=rolled_back.pin, state="proposed")
    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/migrations/{migration.pk}/consent/"
    confirm = client.get(response["Location"]).content.decode()
    assert rolled_back.current.name in confirm


def test_a_refused_proposal_is_an_error_on_the_same_page_and_writes_nothing(rolled_back, client):
    client.force_login(rolled_back.admin)
    before = Migration.objects.count()
    response = client.post(f"/o/acme/pins/{rolled_back.pin.pk}/propose/", {"to_snapshot": "no-such-snapshot"})
    assert response.status_code == 404
    html = response.content.decode()
    assert f'id="wf-error-{rolled_back.pin.pk}" role="alert">No snapshot' in html
    assert "A way forward for v1-chat" in html  # the same page, the form still there
    assert Migration.objects.count() == before


def test_members_and_other_organisations_cannot_propose(rolled_back, client):
    client.force_login(rolled_back.member)
    url = f"/o/acme/pins/{rolled_back.pin.pk}/propose/"
    assert client.post(url, {"to_snapshot": rolled_back.current.name}).status_code == 403
    client.force_login(rolled_back.outsider)
    assert client.post(url, {"to_snapshot": rolled_back.current.name}).status_code == 404
    other_pin = rolled_back.other_org.pins.get()
    client.force_login(rolled_back.admin)
    assert client.post(f"/o/acme/pins/{other_pin.pk}/propose/", {"to_snapshot": "x"}).status_code == 404
    assert not Migration.objects.filter(state="proposed").exists()


def _pins_needing_a_way_forward(world, n: int) -> None:
    """n more aliases of the family pinned to `old` (deprecated), plus pins that need none."""
    Snapshot.objects.filter(pk=world.old.pk).update(deprecated_at=f.days(-5), replacement=world.current)
    for _ in range(n):
        alias = f.make_alias(name=f"v1-chat-{world.org.pins.count():03d}", target=world.old)
        f.make_pin(org=world.org, alias=alias, snapshot=world.old)
    if not Snapshot.objects.filter(name="chat-2024-01-01").exists():
        # Pinned while it served; then retired (still needs a way forward) or purged (needs none).
        for name, retention in (("chat-2024-01-01", f.days(-1)), ("chat-2024-02-01", f.days(30))):
            gone = f.SnapshotFactory(family=world.family, name=name, released_at=f.days(-400))
            f.make_pin(org=world.org, alias=f.make_alias(name=f"v1-{name}", target=gone), snapshot=gone)
            Snapshot.objects.filter(pk=gone.pk).update(
                deprecated_at=f.days(-300), retires_at=f.days(-200), retention_until=retention
            )
        f.make_pin(
            org=world.org, alias=f.make_alias(name="v1-active", target=world.current), snapshot=world.current
        )


def test_the_pins_needing_a_way_forward_are_chosen_in_sql_as_way_forward_chooses_them(world):
    _pins_needing_a_way_forward(world, 3)
    in_sql = set(selectors.ways_forward_pins(org=world.org).values_list("pk", flat=True))
    one_by_one = {
        pin.pk
        for pin in world.org.pins.select_related("snapshot")
        if selectors.way_forward(org=world.org, pin=pin) is not None
    }
    assert in_sql == one_by_one and len(in_sql) == 5  # world's, the three new ones, the retired one


def test_the_migrations_page_shows_ways_forward_a_page_at_a_time_in_the_same_queries(
    world, client, django_assert_max_num_queries
):
    _pins_needing_a_way_forward(world, 1)
    client.force_login(world.admin)
    with CaptureQueriesContext(connection) as few:
        client.get("/o/acme/migrations/")
    _pins_needing_a_way_forward(world, 10)  # 3 + 10 = 13 pins: three pages of five
    with django_assert_max_num_queries(len(few)):
        html = client.get("/o/acme/migrations/").content.decode()
    assert html.count("A way forward for ") == 5
    assert "13 pins need a way forward; showing 1\u20135." in html
    last = client.get("/o/acme/migrations/?wf_page=3").content.decode()
    assert last.count("A way forward for ") == 3 and "showing 11\u201313" in last
    assert "← Previous pins" in last and "Next pins →" not in last
    assert client.get("/o/acme/migrations/?wf_page=x").status_code == 200  # a bad page: the first
