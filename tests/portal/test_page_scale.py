"""Every list page reads one page in SQL: the same number of queries for a handful of rows or
thousands, and a pager with the exact total."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts.models import BugReport, ConsentRecord, Migration, MigrationState, Pin, Role
from notifications.models import Channel, Milestone, Notice
from tests import factories as f
from tests.portal.test_dashboard import make_pins

pytestmark = pytest.mark.django_db

PAGES = ["/o/{org}/consents/", "/o/{org}/migrations/", "/o/{org}/notifications/", "/o/{org}/bugs/"]
PAGES += ["/o/{org}/changelog/", "/o/{org}/"]


def fill(org, n: int, *, prefix: str) -> None:
    """n pins, migrations (half open), ledger records, notices and bug reports, in bulk."""
    make_pins(org, n, prefix=prefix)
    pins = list(Pin.objects.filter(organization=org).select_related("alias__family", "snapshot"))
    other = f.SnapshotFactory(family=pins[0].alias.family, name=f"{prefix}-next", released_at=f.days(-1))
    now = timezone.now()
    Migration.objects.bulk_create(
        Migration(
            organization=org,
            pin=pin,
            from_snapshot=pin.snapshot,
            to_snapshot=other,
            state=MigrationState.PROPOSED
            if i % 2 and not pin.migrations.exists()
            else MigrationState.DECLINED,
            proposed_at=f.days(-i % 50),
        )
        for i, pin in enumerate(pins)
    )
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            organization=org,
            seq=i + 1,
            action="consent",
            actor_email="a@example.com",
            created_at=now,
            prev_hash="0" * 64,
            hash=f"{i:064d}",
        )
        for i in range(n)
    )
    Notice.objects.bulk_create(
        Notice(organization=org, milestone=Milestone.ADHOC, channel=Channel.EMAIL, dedupe_key=f"k{i}")
        for i in range(n)
    )
    BugReport.objects.bulk_create(
        BugReport(
            organization=org,
            alias=pin.alias,
            snapshot=pin.snapshot,
            observed_at=now,
            owning_team="team",
        )
        for pin in pins
    )


def queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured), response.content.decode()


@pytest.mark.parametrize("page", PAGES)
def test_a_list_page_costs_the_same_queries_for_5_rows_and_for_1000(client, page):
    user = f.UserFactory(username="scale")
    small, large = f.OrganizationFactory(slug="few"), f.OrganizationFactory(slug="many")
    for org in (small, large):
        f.MembershipFactory(user=user, organization=org, role=Role.ADMIN)
    fill(small, 5, prefix="few")
    fill(large, 1000, prefix="many")
    client.force_login(user)
    client.get(page.format(org="few"))  # warm-up
    few, _ = queries(client, page.format(org="few"))
    many, html = queries(client, page.format(org="many"))
    last, _ = queries(client, page.format(org="many") + "?page=40")
    assert few == many == last, (few, many, last)
    if "changelog" not in page:
        assert re.search(r"Page 1 of \d+ \(1.25 of 1\d{3}\)", html)  # the pager and its exact total
