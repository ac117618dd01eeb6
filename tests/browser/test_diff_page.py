from __future__ import annotations

import pytest

from tests.browser.conftest import login, screenshot
from tests.contracts.diff_support import make_result, make_samples, make_suite

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def diff_url(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    own = make_suite("acme-clinical", owner=world.org, tolerances={"accuracy": 0.02})
    foreign = make_suite("globex-secret", owner=world.other_org)
    for suite in (own, foreign):
        make_result(suite, world.old, accuracy=(0.82, {"cardiology": 0.8}))
        make_result(suite, world.current, accuracy=(0.74, {"cardiology": 0.79}))
    make_samples(world.old, {"dose": "Take 200 mg every 4 hours."})
    make_samples(world.current, {"dose": "Take 200 mg every 6 hours."})
    return f"/o/acme/diff/{world.old.name}...{world.current.name}/"


def test_admin_reads_the_diff_chart_and_renders_the_pdf_in_the_background(page, world, diff_url):
    login(page, "acme-admin")
    page.goto(diff_url)
    assert page.locator("h1").inner_text() == f"Diff {world.old.name} → {world.current.name}"
    chart = page.locator("figure.diff-chart svg")
    assert chart.is_visible() and chart.locator("rect.bar-regression").count() == 1
    assert page.get_by_text("globex-secret").count() == 0
    assert page.locator("del", has_text="4").count() == 1 and page.locator("ins", has_text="6").count() == 1
    for label in ("JSON", "Markdown", "HTML", "PDF"):
        assert page.get_by_role("link", name=label, exact=True).count() == 1
    page.get_by_role("button", name="Render PDF").click()
    download_link = page.get_by_role(
        "link", name=f"Download diff_{world.old.name}...{world.current.name}.pdf"
    )
    download_link.wait_for(timeout=30_000)
    with page.expect_download() as download_info:
        download_link.click()
    assert download_info.value.suggested_filename == f"diff_{world.old.name}...{world.current.name}.pdf"
    screenshot(page, "diff-page")


def test_markdown_download_has_its_filename(page, world, diff_url):
    login(page, "acme-member")
    page.goto(diff_url)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Markdown", exact=True).click()
    assert download_info.value.suggested_filename == f"diff_{world.old.name}...{world.current.name}.md"
