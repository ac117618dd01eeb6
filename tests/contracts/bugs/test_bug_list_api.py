"""GET /api/v1/bug-reports/: the organisation's reports in cursor pages, filtered like the page,
readable by every role, nothing of another organisation's, and a constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from contracts.bugs.services import bug_report_file
from contracts.models import BugReport, BugReportEvent, BugStatus
from tests import factories as f
from tests.contracts.bug_support import POLICY, accept_terms
from tests.contracts.test_pagination import next_url, walk

pytestmark = pytest.mark.django_db

URL = "/api/v1/bug-reports/"


def make_reports(org, n: int, *, alias, snapshot, prefix: str = "r") -> list[BugReport]:
    """n reports, one a minute, the newest last, each with two history events (bulk: filing itself
    is tested in test_bug_reports.py)."""
    start = timezone.now() - dt.timedelta(days=1)
    reports = BugReport.objects.bulk_create(
        BugReport(
            organization=org,
            alias=alias,
            snapshot=snapshot,
            observed_at=start,
            response_id=f"{prefix}-{i}",
            owning_team="Chat Models Team",
            created_at=start + dt.timedelta(minutes=i),
        )
        for i in range(n)
    )
    BugReportEvent.objects.bulk_create(
        BugReportEvent(report=report, status=status, created_at=report.created_at)
        for report in reports
        for status in (BugStatus.NEW, BugStatus.REPRODUCING)
    )
    return reports


def test_the_list_pages_newest_first_and_reports_filed_meanwhile_shift_nothing(world, api):
    make_reports(world.org, 7, alias=world.alias, snapshot=world.old)
    first = api.get(f"{URL}?limit=3", key=world.key)
    assert first.status_code == 200
    seen = [r["response_id"] for r in first.json()]
    assert seen == ["r-6", "r-5", "r-4"]
    for _ in range(2):  # filed while the client pages: newer than everything already read
        bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-1), response_id="late")
    rest, pages = walk(api, next_url(first), world.key)
    ids = seen + [r["response_id"] for r in rest]
    assert ids == [f"r-{i}" for i in range(6, -1, -1)] and pages == 2  # none repeated, none skipped
    assert next_url(api.get(f"{URL}?limit=500", key=world.key)) is None


def test_each_report_in_the_list_is_the_report_as_retrieved(world, api):
    accept_terms(world.org)
    report = bug_report_file(org=world.org, alias="v1-chat", observed_at=f.days(-5), prompt="p")
    listed = api.get(URL, key=world.key).json()
    assert listed == [api.get(f"{URL}{report.pk}/", key=world.key).json()]
    assert listed[0]["policy"]["text"] == POLICY and listed[0]["snapshot"]["id"] == world.old.name


def test_the_list_offers_the_pages_filters_and_the_alias_and_snapshot_by_name(world, api):
    reports = make_reports(world.org, 4, alias=world.alias, snapshot=world.old)
    other_alias = f.make_alias(name="chat-latest", target=world.current, at=f.days(-50))
    make_reports(world.org, 2, alias=other_alias, snapshot=world.current, prefix="latest")
    BugReport.objects.filter(pk__in=[reports[0].pk, reports[2].pk]).update(status=BugStatus.CLOSED)

    def ids(query: str) -> list[str]:
        response = api.get(f"{URL}?{query}", key=world.key)
        assert response.status_code == 200, response.content
        return [r["response_id"] for r in response.json()]

    assert ids("status=closed") == ["r-2", "r-0"]
    assert ids("alias=chat-latest") == ["latest-1", "latest-0"]
    assert ids(f"snapshot={world.old.name}") == ["r-3", "r-2", "r-1", "r-0"]
    assert ids("q=LATEST-1") == ["latest-1"]  # in the response id, any case
    assert ids("q=2025-06") == ["latest-1", "latest-0"]  # in the snapshot name
    assert ids("status=new&alias=v1-chat") == ["r-3", "r-1"]
    assert ids("alias=no-such-alias") == []
    for bad in ("status=nope", "alias=not%20a%20slug", f"q={'x' * 101}", "limit=0", "limit=501"):
        response = api.get(f"{URL}?{bad}", key=world.key)
        field = bad.split("=")[0]
        assert response.status_code == 400 and field in response.json()["error"]["fields"], bad


def test_a_cursor_of_another_filter_or_organisation_is_refused(world, api):
    make_reports(world.org, 3, alias=world.alias, snapshot=world.old)
    cursor = next_url(api.get(f"{URL}?limit=1", key=world.key)).split("cursor=")[1]
    assert api.get(f"{URL}?limit=1&cursor={cursor}", key=world.key).status_code == 200
    for url, key in (
        (f"{URL}?status=new&cursor={cursor}", world.key),
        (f"{URL}?cursor={cursor}", world.other_key),
    ):
        response = api.get(url, key=key)
        assert response.status_code == 400
        assert response.json()["error"]["fields"] == {"cursor": "belongs to another list"}


def test_every_role_reads_the_list_and_nobody_sees_another_organisations(world, api, client):
    make_reports(world.org, 2, alias=world.alias, snapshot=world.old)
    make_reports(world.other_org, 1, alias=world.alias, snapshot=world.current, prefix="globex")
    for user in (world.admin, world.member, world.legal):
        client.force_login(user)
        response = client.get(URL)
        assert response.status_code == 200 and [r["response_id"] for r in response.json()] == ["r-1", "r-0"]
    client.force_login(world.outsider)
    assert [r["response_id"] for r in client.get(URL).json()] == ["globex-0"]
    assert client.get(f"{URL}?org={world.org.slug}").status_code == 404  # not a member of acme
    assert [r["organization"] for r in api.get(URL, key=world.other_key).json()] == ["globex"]
    client.force_login(f.UserFactory(username="no-org"))
    assert client.get(URL).status_code == 404
    client.logout()
    assert client.get(URL).json()["error"]["code"] == "not_authenticated"


def test_the_list_answers_304_to_its_etag_until_a_report_changes(world, api):
    make_reports(world.org, 2, alias=world.alias, snapshot=world.old)
    etag = api.get(URL, key=world.key).headers["ETag"]
    assert api.get(URL, key=world.key, HTTP_IF_NONE_MATCH=etag).status_code == 304
    BugReport.objects.filter(organization=world.org).update(status=BugStatus.REPRODUCING)
    changed = api.get(URL, key=world.key, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_the_list_costs_the_same_queries_for_5_reports_or_200_with_their_histories(world, api):
    accept_terms(world.org)
    few_reports = make_reports(world.org, 5, alias=world.alias, snapshot=world.old, prefix="a")
    BugReport.objects.filter(pk=few_reports[0].pk).update(status=BugStatus.FIXED, fixed_in=world.current)
    url = f"{URL}?limit=500"
    api.get(url, key=world.key)  # warm-up (key cache, last-used stamp)
    with CaptureQueriesContext(connection) as few:
        assert len(api.get(url, key=world.key).json()) == 5
    make_reports(world.org, 195, alias=world.alias, snapshot=world.current, prefix="b")
    with CaptureQueriesContext(connection) as many:
        body = api.get(url, key=world.key).json()
    assert len(body) == 200 and all(len(r["history"]) == 2 for r in body)
    assert {r["policy"]["text"] for r in body} == {POLICY}
    assert [r["fixed_in"] for r in body if r["fixed_in"]] == [world.current.name]
    # The page, then one query each: organisation, alias, snapshot, fixed-in, events, terms.
    assert len(many) == len(few) <= 7, [q["sql"] for q in many]
