"""A legal member exports the consent history in the browser and downloads the files."""

from __future__ import annotations

import csv
import io

import pytest

from contracts.ledger import exports
from tests.browser.conftest import login, screenshot
from tests.contracts.export_helpers import seed_ledger

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("signing_keys"),
]


def test_legal_downloads_a_csv_and_a_verified_evidence_bundle(page, world, tmp_path):
    seed_ledger(world, n=4)
    login(page, "acme-legal")
    page.goto("/o/acme/exports/")
    assert page.locator("h1").inner_text() == "Consent history exports"

    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = tmp_path / csv_download.value.suggested_filename
    csv_download.value.save_as(csv_path)
    assert csv_path.suffix == ".csv"
    assert len(list(csv.DictReader(io.StringIO(csv_path.read_text())))) == 4

    page.select_option("select[name=action]", "consent")
    page.get_by_role("button", name="Build evidence bundle").click()
    page.wait_for_load_state("networkidle")
    link = page.get_by_role("link", name="Download bundle")
    with page.expect_download() as bundle_download:
        link.first.click()
    bundle_path = tmp_path / bundle_download.value.suggested_filename
    bundle_download.value.save_as(bundle_path)
    assert exports.verify_file(bundle_path) == []

    page.goto("/o/acme/exports/")
    rows = page.locator("#export-list tbody tr")
    assert rows.count() == 2  # both exports are logged
    assert "action=consent" in rows.first.inner_text()
    screenshot(page, "exports")


def test_member_without_legal_role_is_refused(page, world, console):
    login(page, "acme-member")
    response = page.goto("/o/acme/exports/")
    assert response.status == 403
    assert console.errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    console.errors.clear()  # the refusal is the point of this test
