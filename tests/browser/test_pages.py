"""Every main page of the portal, in a real Chromium: axe-core finds no serious or critical
accessibility violation, and at 375 px the page itself never scrolls sideways (a wide table scrolls
inside its own box). A new page is covered by adding one line to MAIN_PAGES.

axe-core comes from PyPI (the axe-playwright-python package bundles axe.min.js); it is evaluated in
the page through the DevTools protocol, which the portal's strict CSP does not govern, so the pages are
checked under the CSP they really have.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from contracts.bugs.services import bug_report_file
from contracts.evals.services import baseline_mark
from contracts.models import ConsentExport, ExportStatus
from portal.context_processors import ORG_NAV
from tests import factories as f
from tests.browser.conftest import login, screenshot
from tests.contracts.diff_support import make_result, make_samples, make_suite
from tests.contracts.ledger_helpers import accept, make_terms, propose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# (name, path): the main pages a person reaches. Paths are formatted with the ids of `pages_world`.
MAIN_PAGES: list[tuple[str, str]] = [
    ("dashboard", "/o/acme/"),
    ("snapshot", "/o/acme/snapshots/{old}/"),
    ("timeline", "/o/acme/timeline/"),
    ("changelog", "/o/acme/changelog/"),
    ("migrations", "/o/acme/migrations/"),
    ("migration", "/o/acme/migrations/{migration}/"),
    ("consents", "/o/acme/consents/"),
    ("usage", "/o/acme/usage/"),
    ("terms", "/o/acme/terms/"),
    ("diff", "/o/acme/diff/{old}...{current}/"),
    ("baselines", "/o/acme/baselines/"),
    ("bug-reports", "/o/acme/bugs/"),
    ("bug-report", "/o/acme/bugs/{bug}/"),
    ("notifications", "/o/acme/notifications/"),
    ("exports", "/o/acme/exports/"),
    ("billing", "/o/acme/billing/"),
    ("settings", "/o/acme/settings/"),
    ("api-keys", "/o/acme/settings/keys/"),
    ("preferences", "/accounts/preferences/"),
    ("organisations", "/orgs/"),
]
# Pages seen signed out.
PUBLIC_PAGES: list[tuple[str, str]] = [
    ("login", "/accounts/login/"),
    ("password-reset", "/accounts/password_reset/"),
]
BLOCKING_IMPACTS = ("serious", "critical")

_axe = Axe()


@pytest.fixture
def pages_world(world, settings, tmp_path):
    """One of everything a main page lists: accepted terms, an open migration, eval results with a
    baseline and golden samples, a bug report, an export."""
    settings.MEDIA_ROOT = tmp_path
    accept(world.org, make_terms("2025-09"), world.admin)
    migration = propose(world)
    suite = make_suite("acme-clinical", owner=world.org, tolerances={"accuracy": 0.02})
    baseline = make_result(suite, world.old, accuracy=(0.82, {"cardiology": 0.8}))
    make_result(suite, world.current, accuracy=(0.74, {"cardiology": 0.79}))
    baseline_mark(org=world.org, result=baseline, acting_user=world.admin)
    make_samples(world.old, {"dose": "Take 200 mg every 4 hours."})
    make_samples(world.current, {"dose": "Take 200 mg every 6 hours."})
    bug = bug_report_file(org=world.org, reporter=world.admin, alias=world.alias.name, observed_at=f.days(-5))
    ConsentExport.objects.create(
        organization=world.org,
        requested_by=world.legal,
        format="csv",
        status=ExportStatus.READY,
        record_count=3,
        finished_at=timezone.now(),
    )
    # A consultant in two organisations sees the organisation list.
    f.MembershipFactory(user=world.admin, organization=world.other_org)
    ids = {"old": world.old.name, "current": world.current.name, "migration": migration.pk, "bug": bug.pk}
    return [(name, path.format(**ids)) for name, path in MAIN_PAGES]


def serious_violations(page) -> list[str]:
    results = _axe.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING_IMPACTS
    ]


def sideways_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def overflowing_elements(page) -> list[str]:
    """The outermost elements reaching past the right edge of the screen (for the failure message)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= window.innerWidth + 1)
             .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
               + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\\s+/).join('.') : ''))"""
    )


def visit(page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, (path, response and response.status)
    page.wait_for_load_state("networkidle")


def test_no_page_has_a_serious_or_critical_accessibility_violation(page, pages_world):
    found: dict[str, list[str]] = {}
    for name, path in PUBLIC_PAGES:
        visit(page, path)
        found[name] = serious_violations(page)
    login(page, "acme-admin")
    for name, path in pages_world:
        visit(page, path)
        found[name] = serious_violations(page)
    failures = {name: issues for name, issues in found.items() if issues}
    assert failures == {}, failures
    assert len(found) == len(PUBLIC_PAGES) + len(MAIN_PAGES)


def test_every_page_fits_375px_without_scrolling_sideways_and_stays_accessible(page, pages_world):
    page.set_viewport_size({"width": 375, "height": 812})
    overflow: dict[str, list[str]] = {}
    violations: dict[str, list[str]] = {}
    for name, path in PUBLIC_PAGES:
        visit(page, path)
        if sideways_overflow(page) > 0:
            overflow[name] = overflowing_elements(page)
    login(page, "acme-admin")
    for name, path in pages_world:
        visit(page, path)
        if sideways_overflow(page) > 0:
            overflow[name] = overflowing_elements(page)
        violations[name] = serious_violations(page)
        screenshot(page, f"{name}-375")
    assert overflow == {}
    assert {name: v for name, v in violations.items() if v} == {}


def test_wide_tables_scroll_inside_their_box_and_stacked_tables_keep_their_labels(page, pages_world):
    page.set_viewport_size({"width": 375, "height": 812})
    login(page, "acme-admin")
    paths = dict(pages_world)
    visit(page, paths["diff"])
    # The diff's tables are laid out one card per row at 375 px, each value named by its column.
    cell = page.locator("table.evals tbody td[data-label]").first
    label = page.evaluate("el => getComputedStyle(el, '::before').content", cell.element_handle())
    assert label.strip('"').endswith(": ") and len(label) > 4, label
    visit(page, paths["baselines"])
    uploaded = page.locator("td[data-label='Uploaded']").first
    assert page.evaluate("el => getComputedStyle(el, '::before').content", uploaded.element_handle()) == (
        '"Uploaded: "'
    )
    # A table without labels keeps its header row and scrolls inside its wrapper.
    visit(page, paths["exports"])
    wrap = page.locator(".table-wrap:has(#export-list)")
    assert wrap.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    expect(page.locator("#export-list thead th").first).to_be_visible()
    assert sideways_overflow(page) <= 0


def test_the_nav_collapses_into_a_menu_at_375px_and_every_tab_is_reachable(page, pages_world):
    page.set_viewport_size({"width": 375, "height": 812})
    login(page, "acme-admin")
    visit(page, "/o/acme/migrations/")
    bar, menu = page.locator(".orgnav-bar"), page.locator(".orgnav-menu")
    expect(bar).to_be_hidden()
    summary = menu.locator("summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("Menu")
    expect(summary).to_contain_text("Migrations")  # the current section, named while closed
    expect(menu.get_by_role("link", name="Billing")).to_be_hidden()
    summary.click()
    links = menu.locator(".orgnav-list a")
    expect(links).to_have_count(len(ORG_NAV))
    for i in range(len(ORG_NAV)):
        expect(links.nth(i)).to_be_visible()
    screenshot(page, "nav-menu-375")
    menu.get_by_role("link", name="Billing").click()
    page.wait_for_url("**/o/acme/billing/")
    # At 1280 px the same links are a bar and there is no menu.
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(page.locator(".orgnav-menu summary")).to_be_hidden()
    expect(page.locator(".orgnav-bar a[aria-current=page]")).to_have_text("Billing")


def test_a_refused_bug_report_shows_its_error_accessibly_at_375px(page, pages_world, console):
    """The "new bug report" form after a refusal: the error, what was typed, no overflow, no violation."""
    page.set_viewport_size({"width": 375, "height": 812})
    login(page, "acme-admin")
    visit(page, dict(pages_world)["bug-reports"])
    page.fill("#id_receipt", "{not json")
    page.fill("#id_prompt", "What is the dose?")
    page.click("#bug-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#bug-form").locator("xpath=..").get_by_role("alert")).to_contain_text("not JSON")
    expect(page.locator("#id_prompt")).to_have_value("What is the dose?")
    assert sideways_overflow(page) <= 0, overflowing_elements(page)
    assert serious_violations(page) == []
    screenshot(page, "bug-form-error-375")
    assert console.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    console.errors.clear()  # the refusal (a 400 with the form) is the point of this test
