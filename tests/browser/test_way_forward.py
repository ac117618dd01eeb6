"""In the browser, an admin whose rollback left a pin on a deprecated snapshot sees the way forward,
proposes the newest active successor, reads the diff summary, baseline verdict and rollback window
on the confirmation, and consents (issue #13, items 2 and 5)."""

from __future__ import annotations

import pytest

from contracts.consent import services
from contracts.models import ConsentRecord, LedgerAction, Snapshot
from tests import factories as f
from tests.browser.conftest import login, screenshot
from tests.contracts.ledger_helpers import accept, decider, make_terms

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_after_a_rollback_the_admin_finds_a_way_forward_and_consents(page, world):
    accept(world.org, make_terms("2025-09", rollback_window_hours=48), world.admin)
    Snapshot.objects.filter(pk=world.old.pk).update(
        deprecated_at=f.days(-5), retires_at=f.days(120), replacement=world.current
    )
    migration = services.migration_propose(pin=world.pin, to_snapshot=world.current)
    services.migration_consent(migration=migration, decider=decider(world.admin))
    services.migration_rollback(migration=migration, decider=decider(world.admin))
    newest = f.SnapshotFactory(family=world.family, name="chat-2025-10-01", released_at=f.days(-3))

    login(page, "acme-admin")
    page.goto("/o/acme/migrations/")
    section = page.locator(f"#way-forward-{world.pin.pk}")
    assert f"You rolled back migration #{migration.pk}" in section.inner_text()
    assert section.locator("select").input_value() == newest.name
    screenshot(page, "way-forward")
    section.get_by_role("button", name="Propose and review").click()
    page.wait_for_url("**/consent/")
    assert "You can roll back within 48 hours of the move." in page.locator(".shown-rollback").inner_text()
    assert "No procurement baseline applies." in page.locator(".shown-baseline").inner_text()
    assert "regression" in page.locator(".shown-diff").inner_text()
    page.get_by_role("button", name="Confirm: consent").click()
    page.wait_for_load_state("networkidle")
    record = ConsentRecord.objects.filter(organization=world.org, action=LedgerAction.CONSENT).latest("seq")
    assert record.to_snapshot == newest.name and record.details["shown"]["rollback_window_hours"] == 48
    world.pin.refresh_from_db()
    assert world.pin.snapshot == newest
