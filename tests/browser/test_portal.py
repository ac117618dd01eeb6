"""The portal in a real Chromium: sign in, filter in place with htmx, change a policy, see the
timeline, walk by keyboard, no console errors (CSP violations included), screenshots of each page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from contracts import models
from tests import factories as f
from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal_world(world):
    embed = f.FamilyFactory(slug="embed", name="Embeddings")
    old = f.SnapshotFactory(
        family=embed,
        name="embed-2024-01-01",
        released_at=f.days(-300),
        deprecated_at=f.days(-10),
        retires_at=f.days(40),
        retention_until=f.days(400),
    )
    new = f.SnapshotFactory(family=embed, name="embed-2025-01-01", released_at=f.days(-20))
    models.Snapshot.objects.filter(pk=old.pk).update(replacement=new)
    alias = f.make_alias(name="v1-embed", target=old, at=f.days(-290))
    f.make_pin(org=world.org, alias=alias, snapshot=old, policy=models.UpgradePolicy.FOLLOW, at=f.days(-280))
    for i in range(18):
        models.ChangelogEntry.objects.create(
            snapshot=world.current,
            kind=models.ChangelogKind.values[i % 5],
            title=f"Change number {i:02d}",
            body="Something changed.",
            published_at=f.days(-60 - i),
        )
    return world


def rows(page) -> list[str]:
    return page.locator("#pins tr.pin-row").evaluate_all("els => els.map(e => e.dataset.alias)")


def test_dashboard_filters_update_in_place_without_a_reload(page, portal_world):
    login(page, "acme-admin")
    assert page.url.endswith("/o/acme/")
    assert sorted(rows(page)) == ["v1-chat", "v1-embed"]
    screenshot(page, "dashboard")
    page.evaluate("window.__noReload = 'still here'")
    with page.expect_response(
        lambda r: "status=deprecated" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.select_option("#filter-status", "deprecated")
    expect(page.locator("#pins tr.pin-row")).to_have_count(1)
    assert rows(page) == ["v1-embed"]
    assert page.evaluate("window.__noReload") == "still here"
    assert "status=deprecated" in page.url  # pushed into the history, so the view can be shared
    page.select_option("#filter-status", "")
    expect(page.locator("#pins tr.pin-row")).to_have_count(2)
    page.fill("#filter-q", "v1-ch")
    expect(page.locator("#pins tr.pin-row")).to_have_count(1)
    assert rows(page) == ["v1-chat"]
    assert page.evaluate("window.__noReload") == "still here"
    screenshot(page, "dashboard-filtered")


def test_admin_changes_a_policy_in_place(page, portal_world):
    login(page, "acme-admin")
    page.goto("/o/acme/settings/")
    page.evaluate("window.__noReload = 1")
    pin = portal_world.pin
    page.select_option(f"#policy-{pin.pk}", "on-retirement")
    page.click(f"#pin-{pin.pk} button[type=submit]")
    page.wait_for_selector(f"#pin-{pin.pk} .saved")
    assert "Saved: Stay until retirement" in page.inner_text(f"#pin-{pin.pk}")
    assert page.evaluate("window.__noReload") == 1
    change = models.PinChange.objects.filter(pin=pin).latest("id")
    assert (change.to_policy, change.actor.username) == ("on-retirement", "acme-admin")
    screenshot(page, "settings-policies")


def test_timeline_svg_renders_with_pins_and_today(page, portal_world):
    login(page, "acme-admin")
    page.goto("/o/acme/timeline/")
    svgs = page.locator("svg.timeline-svg")
    assert svgs.count() == 2
    box = svgs.first.bounding_box()
    assert box["width"] > 700 and box["height"] > 80
    assert page.locator("svg.timeline-svg .today").count() == 2
    assert page.locator("svg.timeline-svg .tl-pinned").count() >= 2
    assert page.locator("svg.timeline-svg .milestone").count() >= 3
    # the patterns resolve: a deprecated segment is painted, not left transparent
    assert page.locator("rect.seg-deprecated").first.bounding_box()["width"] > 0
    page.click("summary:has-text('Embeddings timeline as a table')")
    table = page.locator("details.timeline-table", has_text="Embeddings timeline as a table")
    expect(table.get_by_text("Pinned:")).to_be_visible()
    screenshot(page, "timeline")


def test_keyboard_reaches_the_filters_and_links_with_a_visible_focus_ring(page, portal_world):
    login(page, "acme-admin")
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        info = page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
                 return {id: e.id, tag: e.tagName, text: (e.textContent || '').trim().slice(0, 40),
                         outline: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"""
        )
        seen.append(info)
    ids = {item["id"] for item in seen}
    assert seen[0]["text"] == "Skip to content"
    assert {"filter-q", "filter-status", "filter-family", "filter-policy"} <= ids
    assert any(item["tag"] == "A" and item["text"].startswith("chat-") for item in seen)
    focused = [item for item in seen if item["tag"] in ("A", "INPUT", "SELECT", "BUTTON")]
    assert focused and all(item["outline"] != "none" and item["width"] >= 2 for item in focused), focused


def test_changelog_loads_more_in_place_and_toggles_my_pins(page, portal_world):
    login(page, "acme-member")
    page.goto("/o/acme/changelog/")
    page.evaluate("window.__noReload = 1")
    before = page.locator("li.entry").count()
    page.click("#load-more a")
    assert before == 15
    expect(page.locator("li.entry")).to_have_count(18)
    assert page.evaluate("window.__noReload") == 1
    page.check("#filter-mine")
    expect(page).to_have_url(re.compile(r"mine=1"))
    assert page.evaluate("window.__noReload") == 1
    screenshot(page, "changelog")


def test_every_page_loads_without_console_or_csp_errors(page, portal_world, console):
    login(page, "acme-admin")
    key = models.ApiKey.objects.filter(organization=portal_world.org).first()
    assert key is not None
    for url, name in [
        ("/o/acme/", None),
        (f"/o/acme/snapshots/{portal_world.old.name}/", "snapshot"),
        ("/o/acme/timeline/", None),
        ("/o/acme/changelog/", None),
        ("/o/acme/settings/", None),
        ("/orgs/", None),
        ("/o/acme/settings/keys/", "api-keys"),
    ]:
        response = page.goto(url)
        assert response.status == 200, url
        if name:
            screenshot(page, name)
    page.fill("#key-name", "browser key")
    page.click("text=Create key")
    assert page.locator("#new-key").input_value().startswith("vcp_")
    page.click("button[type=submit]:has-text('Sign out')")
    page.wait_for_url("**/accounts/login/")
    screenshot(page, "login")
    page.goto("/accounts/password_reset/")
    screenshot(page, "password-reset")
    console.assert_clean()


def test_the_portal_fits_a_375px_screen(page, portal_world):
    page.set_viewport_size({"width": 375, "height": 812})
    login(page, "acme-admin")
    for url, name in [
        ("/o/acme/", "dashboard-375"),
        ("/o/acme/timeline/", "timeline-375"),
        (f"/o/acme/snapshots/{portal_world.old.name}/", "snapshot-375"),
    ]:
        page.goto(url)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (url, overflow)
        screenshot(page, name)


def test_a_consultant_switches_organisation(page, portal_world):
    user = f.UserFactory(username="consultant")
    f.MembershipFactory(user=user, organization=portal_world.org, role=models.Role.LEGAL)
    f.MembershipFactory(user=user, organization=portal_world.other_org, role=models.Role.ADMIN)
    login(page, "consultant")
    assert page.url.endswith("/orgs/")
    page.click("text=Acme")
    page.wait_for_url("**/o/acme/")
    page.click(".org-switcher summary")
    screenshot(page, "org-switcher")
    page.click(".org-menu >> text=Globex")
    page.wait_for_url("**/o/globex/")
    assert "Pins of Globex" in page.inner_text("h1")
