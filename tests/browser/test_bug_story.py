"""The story of issue #9 in the browser: a customer files a report on an output from six weeks ago
and sees the exact artifact, that it is retired but retained, who owns it and the contract's policy;
vendor staff find it in the triage queue."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from contracts.catalog import services
from contracts.models import BugReport, Role, UpgradePolicy
from tests import factories as f
from tests.browser.conftest import login, screenshot
from tests.contracts.bug_support import POLICY, accept_terms

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WEEK = dt.timedelta(weeks=1)


def build_story(T: dt.datetime):
    with time_machine.travel(T - dt.timedelta(days=100), tick=False):
        family = f.FamilyFactory(slug="chat", name="Chat", owning_team="Chat Models Team")
        original = f.SnapshotFactory(family=family, name="chat-orig", released_at=T - dt.timedelta(days=120))
        alias = f.make_alias(name="v1-chat", target=original, at=T - dt.timedelta(days=99))
        org = f.OrganizationFactory(slug="acme", name="Acme Health")
        f.MembershipFactory(organization=org, role=Role.ADMIN, user__username="acme-admin")
        f.UserFactory(username="vendor-staff", is_staff=True)
        accept_terms(org)
        f.make_pin(
            org=org, alias=alias, snapshot=original, policy=UpgradePolicy.FOLLOW, at=T - dt.timedelta(days=90)
        )
    with time_machine.travel(T + WEEK, tick=False):
        second = f.SnapshotFactory(family=family, name="chat-second", released_at=T + WEEK)
        services.alias_move(alias=alias, to_snapshot=second, reason="new default")
        services.snapshot_update(
            snapshot=original,
            data={"deprecated_at": T + WEEK, "retires_at": T + 5 * WEEK, "retention_until": T + 52 * WEEK},
        )
    with time_machine.travel(T + 4 * WEEK, tick=False):
        third = f.SnapshotFactory(family=family, name="chat-third", released_at=T + 4 * WEEK)
        services.alias_move(alias=alias, to_snapshot=third, reason="new default")
    return original


def test_customer_files_six_weeks_later_and_sees_the_retired_original_and_the_policy(page, live_server):
    # T + 6 weeks is today, so the browser's own clock agrees with the server's.
    T = (timezone.now() - 6 * WEEK).replace(second=0, microsecond=0)
    original = build_story(T)

    login(page, "acme-admin")
    page.goto("/o/acme/bugs/")
    page.fill("#id_alias", "v1-chat")
    page.fill("#id_observed_at", T.strftime("%Y-%m-%dT%H:%M"))
    page.select_option("#id_tz", "UTC")
    page.fill("#id_prompt", "Dose for a 20 kg child?")
    page.fill("#id_output", "Take 2 g.")
    page.fill("#id_expected", "A weight-based dose with a source.")
    page.click("#bug-form button[type=submit]")
    page.wait_for_load_state("networkidle")

    report = BugReport.objects.get()
    assert page.url.endswith(f"/o/acme/bugs/{report.pk}/")
    assert page.locator("#resolved-snapshot").inner_text().startswith(original.name)
    assert "retired" in page.locator("#resolved-snapshot .badge").inner_text()
    assert page.locator("#reproducibility strong").inner_text() == "Reproducible on request"
    assert page.locator("#owning-team").inner_text() == "Chat Models Team"
    assert page.locator("#policy-text").inner_text().strip() == POLICY
    assert page.locator("#status-history li").count() == 1
    screenshot(page, "bug-report-six-weeks-later")

    page.goto("/o/acme/bugs/")
    assert page.locator("#bug-reports tbody tr").count() == 1

    page.context.clear_cookies()
    login(page, "vendor-staff")
    page.goto("/staff/bugs/?snapshot_status=retired")
    assert page.locator("#triage-rows tr").count() == 1
    page.select_option("#f_snapshot_status", "active")
    page.wait_for_load_state("networkidle")
    assert page.locator("#triage-rows").inner_text().strip() == "No reports match."
    screenshot(page, "bug-triage-queue")

    # Retired but retained: "artifact gone" is not offered; staff restore it and reproduce.
    page.goto(f"/staff/bugs/{report.pk}/")
    assert page.locator("input[name=status][value=cannot-reproduce]").count() == 0
    page.check("input[name=status][value=reproducing]")
    page.fill("#id_note", "Restoring chat-orig from retention to replay your prompt.")
    page.click("#transition-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#report-status").inner_text() == "Reproducing"

    page.context.clear_cookies()
    login(page, "acme-admin")
    page.goto(f"/o/acme/bugs/{report.pk}/")
    history = page.locator("#status-history li")
    assert history.count() == 2
    assert "Restoring chat-orig from retention" in history.nth(1).inner_text()
    screenshot(page, "bug-report-being-reproduced")
