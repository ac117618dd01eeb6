"""An admin refreshes a procurement eval in the browser and watches the demo runner (a separate process)
answer it; legal builds the audit pack and downloads it. Also at 375 px."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from contracts import pdfsign
from contracts.ledger import exports
from tests.browser.conftest import login, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("signing_keys"),
]
BASE_DIR = Path(django_settings.BASE_DIR)


@pytest.fixture(autouse=True)
def _loopback_only(page):
    """Anything not addressed to this machine is aborted."""
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(("http://127.0.0.1", "http://localhost"))
            else route.abort()
        ),
    )


def test_an_admin_refreshes_the_eval_and_the_row_follows_the_runner(page, renewal, live_server, tmp_path):
    login(page, "acme-admin")
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/o/acme/baselines/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_role("button", name="Refresh eval").click()
    row = page.locator("#eval-run-rows tr").first
    row.locator("progress").wait_for()
    assert "waiting for the eval runner" in row.inner_text()
    runner = subprocess.run(
        [sys.executable, "manage.py", "eval_runner", "--url", live_server.url, "--key", renewal.runner_key,
         "--steps", "3", "--step-seconds", "0.5", "--exit-when-idle"],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert runner.returncode == 0 and "answered 1 run(s)" in runner.stdout, runner.stdout + runner.stderr
    # The row polls itself (htmx) until the results are in, then stops.
    page.locator("#eval-run-rows tr", has_text="results in").wait_for(timeout=30_000)
    assert "accuracy 0.82" in page.locator("#eval-run-rows tr").first.inner_text()
    assert page.locator("#eval-run-rows tr[hx-trigger]").count() == 0
    screenshot(page, "renewal-refresh-375")


def test_legal_builds_and_downloads_a_verifiable_audit_pack(page, renewal, tmp_path):
    login(page, "acme-legal")
    page.goto("/o/acme/exports/")
    page.get_by_role("button", name="Build audit pack").click()
    link = page.get_by_role("link", name="Download audit pack")
    link.wait_for(timeout=60_000)
    with page.expect_download() as download:
        link.click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    keys = tmp_path / "keys.pem"
    keys.write_text(exports.public_keys_pem())
    verified = subprocess.run(
        [sys.executable, "-I", "contracts/ledger/verify_bundle_standalone.py", str(path), str(keys)],
        cwd=BASE_DIR, capture_output=True, text=True,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout
    with zipfile.ZipFile(path) as z:
        assert pdfsign.pdf_signature_check(z.read("audit-pack.pdf")).ok
    screenshot(page, "renewal-audit-pack")
