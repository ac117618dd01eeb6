"""An admin decides a migration in the browser: confirmation with the terms, htmx in place, ledger."""

from __future__ import annotations

import pytest

from contracts.models import ConsentRecord, LedgerAction, MigrationState
from tests.browser.conftest import login, screenshot
from tests.contracts.ledger_helpers import accept, make_terms, propose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_reviews_the_terms_and_consents_to_a_migration_in_place(page, world):
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    migration = propose(world)
    login(page, "acme-admin")
    page.goto("/o/acme/migrations/")
    row = page.locator(f"#migration-{migration.pk}")
    assert world.current.name in row.inner_text()
    row.get_by_role("link", name="Consent…").click()
    confirm = page.locator(f"#confirm-box-{migration.pk}")
    confirm.wait_for()
    assert "2025-09" in confirm.locator(".terms-version").inner_text()
    assert confirm.locator(".terms-sha").inner_text() == terms.body_sha256
    diff_link = confirm.get_by_role("link", name=f"Review the diff {world.old.name}...{world.current.name}")
    assert diff_link.get_attribute("href") == f"/o/acme/diff/{world.old.name}...{world.current.name}/"
    assert page.url.endswith("/o/acme/migrations/")  # htmx: still on the list
    screenshot(page, "migration-confirm")

    confirm.get_by_role("button", name="Confirm: consent").click()
    page.get_by_text("Recorded.").wait_for()
    record = ConsentRecord.objects.get(migration=migration)
    assert record.action == LedgerAction.CONSENT and record.terms_sha256 == terms.body_sha256
    assert record.hash in page.locator(f"#confirm-box-{migration.pk}").inner_text()
    migration.refresh_from_db()
    assert migration.state == MigrationState.APPLIED
    screenshot(page, "migration-consented")

    page.goto("/o/acme/consents/")
    page.select_option("#action", "consent")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/consents/?action=consent**")
    assert "consent" in page.locator("#consent-table").inner_text()
    assert "accept-terms" not in page.locator("#consent-table").inner_text()


def test_admin_accepts_new_terms_and_the_banner_goes_away(page, world):
    make_terms("2025-09")
    login(page, "acme-admin")
    banner = page.locator(".banner")
    assert "has not accepted the current contract terms (2025-09)" in banner.inner_text()
    banner.get_by_role("link", name="Read and accept them").click()
    page.check("#confirm-terms")
    page.get_by_role("button", name="Accept terms 2025-09").click()
    page.wait_for_load_state("networkidle")
    assert "You accepted terms 2025-09" in page.locator(".messages").inner_text()
    assert page.locator(".banner").count() == 0
    assert ConsentRecord.objects.filter(organization=world.org, action=LedgerAction.ACCEPT_TERMS).count() == 1
    screenshot(page, "terms-accepted")
